// Every read endpoint through HTTP on a seeded database; expected figures are computed here from
// the raw events with the test's own exact arithmetic (helper.ts), not with src/money.ts.
import t from 'tap'
import { buildTestApp, expectNano, expectTimesRate, nanoText, postEvents, runBatch, type EventInput } from '../helper.js'
import type { RateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { fixedClock } from '../../src/clock.js'

const RATE = '4.0341'
/** A rate for every day except the 20th: that day's PLN stays null. */
const rates: RateProvider = {
  resolveUsdPlnRate: async (date) =>
    date === '2026-11-20'
      ? { ok: false, reason: 'NBP unreachable (test)' }
      : {
          ok: true,
          rate: {
            usage_date: date,
            rate: RATE,
            effective_date: '2026-10-30',
            table_no: '211/A/NBP/2026',
            source: 'nbp',
            policy: 'previous-business-day',
            fetched_at: '2026-11-28T12:00:00.000Z',
          },
        },
}

const DAYS = ['2026-11-02', '2026-11-05', '2026-11-20']
const COSTS = ['0.000000150', '0.123456789', '1.5', '0.000000001', '0.3', '2.000000007']

function dataset(): EventInput[] {
  const events: EventInput[] = []
  let n = 0
  for (const [d, date] of DAYS.entries()) {
    for (const client of ['acme', 'globex']) {
      for (const user of ['alice', 'bob', ...(d === 2 ? ['carol'] : [])]) {
        for (const model of ['anthropic/claude-sonnet-4', 'openai/gpt-4o']) {
          // Skip some combinations so users and models differ from day to day.
          if ((n + d) % 5 === 4) {
            n += 1
            continue
          }
          for (let i = 0; i < 2; i++) {
            n += 1
            events.push({
              request_id: `${date}-${client}-${user}-${model}-${i}`,
              client_org_id: client,
              model,
              external_user: user,
              input_tokens: 10 * n + (model.startsWith('openai') ? 5000 : 0),
              output_tokens: 3 * n,
              cost_usd: COSTS[n % COSTS.length]!,
              timestamp: `${date}T${String(8 + i).padStart(2, '0')}:15:00Z`,
            })
          }
        }
      }
    }
  }
  // Outside the range asked below: must not count.
  events.push({ request_id: 'oct', client_org_id: 'acme', model: 'x', external_user: 'alice', input_tokens: 1, output_tokens: 1, cost_usd: '9', timestamp: '2026-10-31T10:00:00Z' })
  return events
}

interface Acc {
  tokens: number
  input: number
  output: number
  requests: number
  raw: bigint
}
const zero = (): Acc => ({ tokens: 0, input: 0, output: 0, requests: 0, raw: 0n })
function add(map: Map<string, Acc>, key: string, e: EventInput) {
  const a = map.get(key) ?? zero()
  a.tokens += e.input_tokens + e.output_tokens
  a.input += e.input_tokens
  a.output += e.output_tokens
  a.requests += 1
  a.raw += expectNano(String(e.cost_usd))
  map.set(key, a)
}
const dateOf = (e: EventInput) => e.timestamp.slice(0, 10)
const pln = (markup: bigint, date: string) => (date === '2026-11-20' ? null : expectTimesRate(markup, RATE))

/** Independent expectations: each stored row is priced from its own raw sum; sums are of those rows. */
function expected(events: EventInput[], client: string, from: string, to: string) {
  const inRange = events.filter((e) => e.client_org_id === client && dateOf(e) >= from && dateOf(e) <= to)
  const day = new Map<string, Acc>()
  const dayModel = new Map<string, Acc>()
  const dayUserModel = new Map<string, Acc>()
  for (const e of inRange) {
    add(day, dateOf(e), e)
    add(dayModel, JSON.stringify([dateOf(e), e.model]), e)
    add(dayUserModel, JSON.stringify([dateOf(e), e.external_user, e.model]), e)
  }
  type Sum = Acc & { markup: bigint; pln: bigint | null }
  const sum = (into: Map<string, Sum>, key: string, a: Acc, date: string) => {
    const s = into.get(key) ?? { ...zero(), markup: 0n, pln: 0n }
    const markup = expectTimesRate(a.raw, '1.3')
    const p = pln(markup, date)
    s.tokens += a.tokens
    s.input += a.input
    s.output += a.output
    s.requests += a.requests
    s.raw += a.raw
    s.markup += markup
    s.pln = s.pln === null || p === null ? null : s.pln + p
    into.set(key, s)
  }
  const models = new Map<string, Sum>()
  for (const [k, a] of dayModel) {
    const [date, model] = JSON.parse(k) as [string, string]
    sum(models, model, a, date)
  }
  const userModels = new Map<string, Sum>()
  const users = new Map<string, Sum>()
  for (const [k, a] of dayUserModel) {
    const [date, user, model] = JSON.parse(k) as [string, string, string]
    sum(userModels, JSON.stringify([user, model]), a, date)
  }
  for (const [k, s] of userModels) {
    const [user] = JSON.parse(k) as [string]
    const u = users.get(user) ?? { ...zero(), markup: 0n, pln: 0n }
    u.tokens += s.tokens
    u.input += s.input
    u.output += s.output
    u.requests += s.requests
    u.raw += s.raw
    u.markup += s.markup
    u.pln = u.pln === null || s.pln === null ? null : u.pln + s.pln
    users.set(user, u)
  }
  const days = new Map<string, Sum>()
  for (const [date, a] of day) sum(days, date, a, date)
  return { days, models, users, userModels, distinctUsers: new Set(inRange.map((e) => e.external_user)).size }
}

const json = (s: { tokens: number; input: number; output: number; requests: number; raw: bigint; markup: bigint; pln: bigint | null }) => ({
  total_tokens: s.tokens,
  input_tokens: s.input,
  output_tokens: s.output,
  total_requests: s.requests,
  raw_cost_usd: Number(nanoText(s.raw)),
  markup_cost_usd: Number(nanoText(s.markup)),
  markup_cost_pln: s.pln === null ? null : Number(nanoText(s.pln)),
})

function totalOf(values: Iterable<{ tokens: number; input: number; output: number; requests: number; raw: bigint; markup: bigint; pln: bigint | null }>) {
  const t = { tokens: 0, input: 0, output: 0, requests: 0, raw: 0n, markup: 0n, pln: 0n as bigint | null }
  for (const v of values) {
    t.tokens += v.tokens
    t.input += v.input
    t.output += v.output
    t.requests += v.requests
    t.raw += v.raw
    t.markup += v.markup
    t.pln = t.pln === null || v.pln === null ? null : t.pln + v.pln
  }
  return t
}

async function seeded(t: Parameters<typeof buildTestApp>[0]) {
  const ctx = await buildTestApp(t, { rates })
  const events = dataset()
  const ingest = await postEvents(ctx.app, events)
  t.equal(ingest.statusCode, 200, ingest.body)
  const run = await runBatch(ctx.app, { from: '2026-10-31', to: '2026-11-20' })
  t.equal(run.statusCode, 200, run.body)
  return { ...ctx, events }
}

t.test('daily, users, models and clients: exact figures, totals equal the rows', async (t) => {
  const { app, events } = await seeded(t)
  const from = '2026-11-01'
  const to = '2026-11-30'

  for (const client of ['acme', 'globex']) {
    const exp = expected(events, client, from, to)

    const daily = (await app.inject({ url: `/usage/clients/${client}/daily?from=${from}&to=${to}` })).json()
    t.same(
      daily.days.map((d: Record<string, unknown>) => ({ usage_date: d.usage_date, ...json(exp.days.get(d.usage_date as string)!) })),
      daily.days.map((d: Record<string, unknown>) => ({
        usage_date: d.usage_date,
        total_tokens: d.total_tokens,
        input_tokens: d.input_tokens,
        output_tokens: d.output_tokens,
        total_requests: d.total_requests,
        raw_cost_usd: d.raw_cost_usd,
        markup_cost_usd: d.markup_cost_usd,
        markup_cost_pln: d.markup_cost_pln,
      })),
      `${client} daily rows`,
    )
    t.same(daily.days.map((d: { usage_date: string }) => d.usage_date), DAYS)
    t.ok(daily.days.every((d: { markup_rate: number }) => d.markup_rate === 1.3), 'each row shows its markup')
    t.same(daily.days.map((d: { exchange_rate_usd_pln: number | null }) => d.exchange_rate_usd_pln), [4.0341, 4.0341, null])
    t.match(daily.totals, { ...json(totalOf(exp.days.values())), days_with_usage: 3, days_missing_pln: 1 })
    t.equal(daily.totals.markup_cost_pln, null, 'a day without PLN makes the PLN total null, never a partial sum')

    const users = (await app.inject({ url: `/usage/clients/${client}/users?from=${from}&to=${to}` })).json()
    t.same(
      users.users.map((u: { external_user: string }) => u.external_user),
      ['alice', 'bob', 'carol'],
    )
    for (const u of users.users) {
      const { models, external_user, ...figures } = u
      t.same(figures, json(exp.users.get(external_user)!), `${client}/${external_user}`)
      for (const m of models) {
        const { model, ...mf } = m
        t.same(mf, json(exp.userModels.get(JSON.stringify([external_user, model]))!), `${client}/${external_user}/${model}`)
      }
    }
    t.same(users.totals, { ...json(totalOf(exp.users.values())), days_with_usage: 3, days_missing_pln: 1 })

    const models = (await app.inject({ url: `/usage/clients/${client}/models?from=${from}&to=${to}` })).json()
    const expectedModels = [...exp.models].sort(([a, x], [b, y]) => y.tokens - x.tokens || a.localeCompare(b))
    t.same(
      models.models,
      expectedModels.map(([model, s]) => ({ model, ...json(s) })),
      `${client} models, most tokens first`,
    )
    t.same(models.totals, { ...json(totalOf(exp.models.values())), days_with_usage: 3, days_missing_pln: 1 })
  }

  // Only days with a rate: the PLN sums are exact.
  const early = expected(events, 'acme', '2026-11-01', '2026-11-10')
  const daily = (await app.inject({ url: '/usage/clients/acme/daily?from=2026-11-01&to=2026-11-10' })).json()
  t.same(daily.totals.markup_cost_pln, json(totalOf(early.days.values())).markup_cost_pln)
  t.not(daily.totals.markup_cost_pln, null)

  const clients = (await app.inject({ url: `/usage/clients?from=${from}&to=${to}` })).json()
  t.same(clients.from, from)
  t.same(
    clients.clients,
    ['acme', 'globex'].map((c) => ({ client_org_id: c, ...json(totalOf(expected(events, c, from, to).days.values())), days_with_usage: 3 })),
  )
  t.same(clients.totals, {
    ...json(totalOf(['acme', 'globex'].flatMap((c) => [...expected(events, c, from, to).days.values()]))),
    days_with_usage: 3,
    days_missing_pln: 1,
  })
})

t.test('CSV and JSON answer the same columns, and CSV money is the ?money=string text, for every list read', async (t) => {
  const { app } = await seeded(t)
  const range = 'from=2026-11-01&to=2026-11-30'
  const cell = (v: unknown) => (v === null ? '' : String(v))
  const csvOf = async (url: string) => {
    const body = (await app.inject({ url: `${url}${url.includes('?') ? '&' : '?'}format=csv` })).body
    t.notMatch(body, /"/, 'no quoted cells in this dataset, so splitting on commas is exact')
    const [header, ...lines] = body.split('\r\n').filter((l) => l !== '')
    return { header: header!.split(','), lines: lines.map((l) => l.split(',')) }
  }
  const jsonOf = async (url: string) => (await app.inject({ url: `${url}${url.includes('?') ? '&' : '?'}money=string` })).json()
  const lists: Array<[string, string]> = [
    [`/usage/clients?${range}`, 'clients'],
    [`/usage/clients/acme/daily?${range}`, 'days'],
    [`/usage/clients/acme/models?${range}`, 'models'],
  ]
  for (const [url, key] of lists) {
    const csv = await csvOf(url)
    const rows = (await jsonOf(url))[key] as Array<Record<string, unknown>>
    t.ok(rows.length > 1, `${url}: rows to compare`)
    t.same(csv.header, Object.keys(rows[0]!), `${url}: CSV header == JSON keys`)
    t.same(csv.lines, rows.map((r) => Object.values(r).map(cell)), `${url}: CSV cells == JSON (?money=string) values`)
  }
  // /users nests each user's models in JSON; its CSV has one line per (user, model).
  const csv = await csvOf(`/usage/clients/acme/users?${range}`)
  const users = (await jsonOf(`/usage/clients/acme/users?${range}`)).users as Array<Record<string, unknown> & { models: Array<Record<string, unknown>> }>
  t.ok(users.length > 1 && users.every((u) => u.models.length > 0))
  const { models: _models, ...user } = users[0]!
  t.same(csv.header, ['external_user', ...Object.keys(users[0]!.models[0]!)], '/users: CSV header == external_user + JSON model keys')
  t.same(csv.header.filter((h) => h !== 'model'), Object.keys(user), '/users: and the JSON user keys')
  t.same(
    csv.lines,
    users.flatMap((u) => u.models.map((m) => [u.external_user, ...Object.values(m)].map(cell))),
    '/users: CSV cells == JSON (?money=string) values',
  )
})

t.test('month summary', async (t) => {
  const { app, events } = await seeded(t)
  const exp = expected(events, 'acme', '2026-11-01', '2026-11-30')
  const res = await app.inject({ url: '/usage/clients/acme/summary' })
  t.equal(res.statusCode, 200, res.body)
  const s = res.json()
  t.equal(s.month, '2026-11', 'default: the current month in the business zone')
  t.equal(s.from, '2026-11-01')
  t.equal(s.to, '2026-11-30')
  t.equal(s.days.length, 3)
  const totals = totalOf(exp.days.values())
  t.match(s.totals, { ...json(totals), days_with_usage: 3 })
  const busiest = [...exp.days].sort(([a, x], [b, y]) => y.tokens - x.tokens || a.localeCompare(b))[0]!
  const costliest = [...exp.days].sort(([a, x], [b, y]) => (y.markup > x.markup ? 1 : y.markup < x.markup ? -1 : a.localeCompare(b)))[0]!
  t.same(s.busiest_day, { usage_date: busiest[0], total_tokens: busiest[1].tokens })
  t.same(s.highest_cost_day, { usage_date: costliest[0], markup_cost_usd: Number(nanoText(costliest[1].markup)) })
  t.equal(s.unique_users, 3, 'alice, bob and carol: distinct over the month, not a sum of daily counts')
  t.equal(s.unique_users, exp.distinctUsers)
  t.ok(s.days.reduce((n: number, d: { unique_users: number }) => n + d.unique_users, 0) > 3, 'the daily counts do add up to more')
  t.equal(s.average_daily_tokens, Math.round((totals.tokens / 3) * 100) / 100)
  // markup / 3, half-even, computed independently: a third is never a tie, so plain rounding of the remainder works.
  const q = totals.markup / 3n
  const avg = totals.markup % 3n >= 2n ? q + 1n : q
  t.equal(s.average_daily_cost_usd, Number(nanoText(avg)))
  t.equal(s.average_daily_cost_pln, null, 'one day lacks PLN')
  t.same(
    s.top_models.map((m: { model: string }) => m.model),
    [...exp.models].sort(([a, x], [b, y]) => y.tokens - x.tokens || a.localeCompare(b)).map(([m]) => m),
  )

  const october = (await app.inject({ url: '/usage/clients/acme/summary?month=2026-10' })).json()
  t.equal(october.days.length, 1)
  t.equal(october.average_daily_cost_pln, Number(nanoText(expectTimesRate(expectTimesRate(expectNano('9'), '1.3'), RATE))))
  t.equal(october.to, '2026-10-31')

  const empty = (await app.inject({ url: '/usage/clients/acme/summary?month=2025-02' })).json()
  t.same(empty.days, [])
  t.equal(empty.to, '2025-02-28')
  t.equal(empty.busiest_day, null)
  t.equal(empty.highest_cost_day, null)
  t.equal(empty.average_daily_tokens, 0)
  t.equal((await app.inject({ url: '/usage/clients/acme/summary?month=2026-13' })).statusCode, 400)
})

t.test('unknown client: 200 with empty rows and zero totals', async (t) => {
  const { app } = await seeded(t)
  const zeros = { total_tokens: 0, input_tokens: 0, output_tokens: 0, total_requests: 0, raw_cost_usd: 0, markup_cost_usd: 0, markup_cost_pln: 0 }
  for (const [path, key] of [
    ['daily', 'days'],
    ['users', 'users'],
    ['models', 'models'],
  ] as const) {
    const res = await app.inject({ url: `/usage/clients/nobody/${path}` })
    t.equal(res.statusCode, 200)
    t.same(res.json()[key], [])
    t.same(res.json().totals, { ...zeros, days_with_usage: 0, days_missing_pln: 0 }, path)
  }
  const summary = (await app.inject({ url: '/usage/clients/nobody/summary' })).json()
  t.equal(summary.unique_users, 0)
  t.same(summary.top_models, [])
})

t.test('range rules: default the month so far, inclusive, at most 366 days, from > to is 400', async (t) => {
  const { app } = await seeded(t)
  const def = (await app.inject({ url: '/usage/clients/acme/daily' })).json()
  t.equal(def.from, '2026-11-01')
  t.equal(def.to, '2026-11-28')
  const one = (await app.inject({ url: '/usage/clients/acme/daily?from=2026-11-05&to=2026-11-05' })).json()
  t.same(one.days.map((d: { usage_date: string }) => d.usage_date), ['2026-11-05'], 'both ends inclusive')
  t.equal((await app.inject({ url: '/usage/clients/acme/daily?from=2025-11-28&to=2026-11-28' })).statusCode, 200, '366 days')
  for (const url of [
    '/usage/clients/acme/daily?from=2025-11-27&to=2026-11-28',
    '/usage/clients/acme/users?from=2026-11-10&to=2026-11-01',
    '/usage/clients/acme/models?from=2026-02-30',
    '/usage/clients?format=xml',
    '/usage/clients?bogus=1',
  ]) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', message: String })
  }
})

t.test('CSV byte for byte: header, RFC 4180 quoting, exact decimals, null as empty', async (t) => {
  const { app } = await buildTestApp(t, { rates })
  const base = { client_org_id: 'csvco', input_tokens: 10, output_tokens: 5, timestamp: '2026-11-05T10:00:00Z' }
  await postEvents(app, [
    { ...base, request_id: 'c1', external_user: 'Doe, "J"', model: 'm/x', cost_usd: '0.1' },
    { ...base, request_id: 'c2', external_user: 'plain', model: 'line\nbreak', cost_usd: '0.000000001' },
    { ...base, request_id: 'c3', external_user: 'plain', model: 'm/x', cost_usd: '0.2', timestamp: '2026-11-20T10:00:00Z' },
  ])
  await runBatch(app, { from: '2026-11-05', to: '2026-11-20' })

  const users = await app.inject({ url: '/usage/clients/csvco/users?from=2026-11-01&to=2026-11-05&format=csv' })
  t.equal(users.statusCode, 200)
  t.equal(users.headers['content-type'], 'text/csv; charset=utf-8')
  t.equal(
    users.body,
    'external_user,model,total_tokens,input_tokens,output_tokens,total_requests,raw_cost_usd,markup_cost_usd,markup_cost_pln\r\n' +
      '"Doe, ""J""",m/x,15,10,5,1,0.100000000,0.130000000,0.524433000\r\n' +
      'plain,"line\nbreak",15,10,5,1,0.000000001,0.000000001,0.000000004\r\n',
  )

  // Accept: text/csv, and a day without PLN: empty field, not 0.
  const daily = await app.inject({ url: '/usage/clients/csvco/daily?from=2026-11-01&to=2026-11-30', headers: { accept: 'text/csv' } })
  t.equal(daily.headers['content-type'], 'text/csv; charset=utf-8')
  t.equal(
    daily.body,
    'usage_date,total_tokens,input_tokens,output_tokens,total_requests,raw_cost_usd,markup_cost_usd,markup_cost_pln,markup_rate,exchange_rate_usd_pln,exchange_rate_date,primary_model,unique_users\r\n' +
      '2026-11-05,30,20,10,2,0.100000001,0.130000001,0.524433004,1.3,4.0341,2026-10-30,"line\nbreak",2\r\n' +
      '2026-11-20,15,10,5,1,0.200000000,0.260000000,,1.3,,,m/x,1\r\n',
  )

  const models = await app.inject({ url: '/usage/clients/csvco/models?from=2026-11-01&to=2026-11-30&format=csv' })
  t.equal(
    models.body,
    'model,total_tokens,input_tokens,output_tokens,total_requests,raw_cost_usd,markup_cost_usd,markup_cost_pln\r\n' +
      'm/x,30,20,10,2,0.300000000,0.390000000,\r\n' +
      '"line\nbreak",15,10,5,1,0.000000001,0.000000001,0.000000004\r\n',
  )
  const clients = await app.inject({ url: '/usage/clients?from=2026-11-01&to=2026-11-05', headers: { accept: 'text/csv' } })
  t.equal(
    clients.body,
    'client_org_id,total_tokens,input_tokens,output_tokens,total_requests,raw_cost_usd,markup_cost_usd,markup_cost_pln,days_with_usage\r\n' +
      'csvco,30,20,10,2,0.100000001,0.130000001,0.524433004,1\r\n',
  )
  const jsonWins = await app.inject({ url: '/usage/clients?format=json', headers: { accept: 'text/csv' } })
  t.match(jsonWins.headers['content-type'], /application\/json/, '?format=json wins over Accept')
  const empty = await app.inject({ url: '/usage/clients/nobody/models?format=csv' })
  t.equal(empty.body, 'model,total_tokens,input_tokens,output_tokens,total_requests,raw_cost_usd,markup_cost_usd,markup_cost_pln\r\n')
})

t.test('today: live from the raw store, markup in force today, cached 30 s, says it is unbilled', async (t) => {
  const { app, clock } = await buildTestApp(t)
  const base = { client_org_id: 'live', external_user: 'u', input_tokens: 100, output_tokens: 10 }
  await postEvents(app, [
    // 00:10 local today (CET, +1): today.
    { ...base, request_id: 't1', model: 'a', cost_usd: '0.1', timestamp: '2026-11-27T23:10:00Z' },
    // 23:50 local yesterday: not today.
    { ...base, request_id: 'y1', model: 'a', cost_usd: '5', timestamp: '2026-11-27T22:50:00Z' },
    { ...base, request_id: 't2', model: 'b', cost_usd: '0.000000003', timestamp: '2026-11-28T11:00:00Z', external_user: 'v' },
  ])
  await app.inject({
    method: 'PUT',
    url: '/clients/live/pricing',
    payload: { markup_rate: '1.5', effective_from: '2026-11-28' },
  })
  const res = await app.inject({ url: '/usage/clients/live/today' })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.match(body, {
    client_org_id: 'live',
    usage_date: '2026-11-28',
    live: true,
    billed: false,
    window_start: '2026-11-27T23:00:00.000Z',
    as_of: '2026-11-28T12:00:00.000Z',
    total_tokens: 220,
    total_requests: 2,
    raw_cost_usd: 0.100000003,
    markup_rate: 1.5,
    markup_cost_usd: Number(nanoText(expectTimesRate(expectNano('0.100000003'), '1.5'))),
    markup_cost_pln: null,
    unique_users: 2,
    primary_model: 'a',
  })
  t.same(body.models.map((m: { model: string }) => m.model), ['a', 'b'])

  await postEvents(app, [{ ...base, request_id: 't3', model: 'a', cost_usd: '1', timestamp: '2026-11-28T11:30:00Z' }])
  clock.advance(29_000)
  t.equal((await app.inject({ url: '/usage/clients/live/today' })).json().total_requests, 2, 'served from the cache')
  clock.advance(2_000)
  const fresh = (await app.inject({ url: '/usage/clients/live/today' })).json()
  t.equal(fresh.total_requests, 3, 'recomputed after 30 s')
  t.equal(fresh.as_of, '2026-11-28T12:00:31.000Z')

  const nobody = (await app.inject({ url: '/usage/clients/nobody/today' })).json()
  t.match(nobody, { total_tokens: 0, raw_cost_usd: 0, primary_model: null, models: [], markup_rate: 1.3 })
})

t.test('today: a raw store that fails answers 503, never zero usage', async (t) => {
  const { app } = await buildTestApp(t, {
    source: (store) => {
      const real = createSqliteSource({ store, clock: fixedClock(0) })
      return {
        ...real,
        // eslint-disable-next-line require-yield
        async *aggregate() {
          throw new Error('connection refused')
        },
      }
    },
  })
  const res = await app.inject({ url: '/usage/clients/acme/today' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { statusCode: 503, error: 'Service Unavailable', message: /raw usage store did not answer/ })
  t.notMatch(res.body, /connection refused/, 'internals stay in the log')
})
