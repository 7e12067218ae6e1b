// Conditional GET on the read routes: a strong ETag per representation, If-None-Match answered 304,
// and the answer cache never serving a stale answer — after a rerun, a manual rate, a void, a run by
// the CLI (another store on the same file), or a new business day.
import t from 'tap'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch, testEnv } from '../helpers/app.js'
import { runCli } from '../helpers/cli.js'
import { event, type EventInput } from '../helpers/events.js'
import type { App } from '../../src/app.js'
import type { RateProvider } from '../../src/rates/types.js'

const ADMIN = 'admin-token-0123456789'
const READ = 'read-token-0123456789'
const ACME = 'acme-token-0123456789'
const GLOBEX = 'globex-token-0123456789'
const AUTH_ENV = { API_ADMIN_TOKEN: ADMIN, API_READ_TOKEN: READ, API_CLIENT_TOKENS: `acme=${ACME},globex=${GLOBEX}` }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

const DAY = '2026-11-20'
const rates: RateProvider = {
  resolveUsdPlnRate: async (date) => ({
    ok: true,
    rate: {
      usage_date: date,
      rate: '4.0341',
      effective_date: '2026-11-19',
      table_no: '225/A/NBP/2026',
      source: 'nbp',
      policy: 'previous-business-day',
      fetched_at: '2026-11-28T12:00:00.000Z',
    },
  }),
}

function events(client: string, count: number, from = 0): EventInput[] {
  return Array.from({ length: count }, (_, i) =>
    event({
      request_id: `${client}-${from + i}`,
      client_org_id: client,
      model: i % 2 ? 'openai/gpt-4o' : 'anthropic/claude-sonnet-4',
      external_user: `user-${i % 3}`,
      input_tokens: 100 + i,
      output_tokens: 10 + i,
      cost_usd: '0.0123',
      timestamp: `${DAY}T10:${String((from + i) % 60).padStart(2, '0')}:00Z`,
    }),
  )
}

/** Every read route of /usage with a query it accepts. */
const READS = [
  '/usage/clients?from=2026-11-01&to=2026-11-27',
  '/usage/clients/acme/daily?from=2026-11-01&to=2026-11-27',
  '/usage/clients/acme/users?from=2026-11-01&to=2026-11-27',
  '/usage/clients/acme/models?from=2026-11-01&to=2026-11-27',
  '/usage/clients/acme/summary?month=2026-11',
  '/usage/clients/acme/today',
  '/usage/exchange-rates?from=2026-11-01&to=2026-11-27',
  '/usage/events/voided?from=2026-11-01&to=2026-11-27',
]

async function get(app: App, url: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers })
}

async function seeded(t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}) {
  const built = await buildTestApp(t, { rates, env })
  const admin = env.API_ADMIN_TOKEN ? bearer(env.API_ADMIN_TOKEN) : {}
  t.equal((await postEvents(built.app, [...events('acme', 12), ...events('globex', 5)], admin)).statusCode, 200)
  t.equal((await runBatch(built.app, { date: DAY }, admin)).json().runs[0].status, 'succeeded')
  return built
}

t.test('every read answers a strong ETag, and 304 with no body when it still matches', async (t) => {
  const { app } = await seeded(t)
  t.equal(READS.length, 8)
  for (const url of READS) {
    const first = await get(app, url)
    t.equal(first.statusCode, 200, url)
    const etag = first.headers.etag as string
    t.match(etag, /^"[A-Za-z0-9_-]{32}"$/, `${url}: a strong tag`)
    t.equal(first.headers['cache-control'], 'private, no-cache', url)
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await get(app, url, { 'if-none-match': inm })
      t.equal(again.statusCode, 304, `${url} If-None-Match: ${inm}`)
      t.equal(again.body, '', `${url}: no body`)
      t.equal(again.headers.etag, etag, `${url}: the same tag`)
      t.notOk(again.headers['content-type'], `${url}: no media type on a 304`)
    }
    const other = await get(app, url, { 'if-none-match': '"something-else"' })
    t.equal(other.statusCode, 200, `${url}: another tag gets the answer`)
    t.equal(other.body, first.body, `${url}: the same answer`)
    t.equal(other.headers.etag, etag)
  }
})

t.test('a read right after a rerun answers the new figures, with and without If-None-Match', async (t) => {
  const { app, store } = await seeded(t)
  // Counts the summary reads behind the route, to see which answers come from the cache.
  const clientDaily = store.summaries.clientDaily
  let reads = 0
  store.summaries.clientDaily = (...args) => {
    reads += 1
    return clientDaily(...args)
  }
  const url = '/usage/clients/acme/daily?from=2026-11-01&to=2026-11-27'
  const before = await get(app, url)
  t.equal(before.json().totals.total_requests, 12)
  t.equal(reads, 1)
  t.equal((await get(app, url)).body, before.body, 'served again while nothing changed')
  t.equal((await get(app, url, { 'if-none-match': before.headers.etag as string })).statusCode, 304)
  t.equal(reads, 1, 'both from the cache')

  // Late records for the day, then a rerun: nothing but the rerun's commit changes the summaries.
  t.equal((await postEvents(app, events('acme', 3, 100))).statusCode, 200)
  t.equal((await get(app, url)).json().totals.total_requests, 12, 'raw records alone do not change the billed day')
  t.equal((await runBatch(app, { date: DAY })).json().runs[0].status, 'succeeded')

  const conditional = await get(app, url, { 'if-none-match': before.headers.etag as string })
  t.equal(conditional.statusCode, 200, 'the old tag no longer matches')
  t.equal(conditional.json().totals.total_requests, 15, 'the new figures')
  t.not(conditional.headers.etag, before.headers.etag)
  t.equal(reads, 2, 'read again after the rerun')
  const plain = await get(app, url)
  t.equal(plain.json().totals.total_requests, 15)
  t.equal(plain.headers.etag, conditional.headers.etag)
  t.equal((await get(app, url, { 'if-none-match': plain.headers.etag as string })).statusCode, 304)

  const overview = await get(app, '/usage/clients?from=2026-11-01&to=2026-11-27')
  t.equal(overview.json().clients.find((c: { client_org_id: string }) => c.client_org_id === 'acme').total_requests, 15)
})

t.test('manual rates, voids and a run by the CLI show at once', async (t) => {
  const { app, dbPath } = await seeded(t)
  const rateUrl = '/usage/exchange-rates?from=2026-11-01&to=2026-11-27'
  const dailyUrl = '/usage/clients/acme/daily?from=2026-11-01&to=2026-11-27'
  const voidedUrl = '/usage/events/voided?from=2026-11-01&to=2026-11-27'
  const rateBefore = await get(app, rateUrl)
  // The test's rate provider stores nothing: the list starts empty.
  t.same(rateBefore.json().rates, [])
  t.equal((await app.inject({ method: 'PUT', url: '/usage/exchange-rates/2026-11-21', payload: { rate: '4.1' } })).statusCode, 200)
  const rateAfter = await get(app, rateUrl, { 'if-none-match': rateBefore.headers.etag as string })
  t.equal(rateAfter.statusCode, 200)
  t.same(rateAfter.json().rates.map((r: { rate: number }) => r.rate), [4.1])

  const voidedBefore = await get(app, voidedUrl)
  t.same(voidedBefore.json().voids, [])
  const voided = await app.inject({ method: 'POST', url: '/usage/events/void', payload: { request_ids: ['acme-0'], reason: 'test' } })
  t.equal(voided.json().voided, 1)
  const voidedAfter = await get(app, voidedUrl, { 'if-none-match': voidedBefore.headers.etag as string })
  t.equal(voidedAfter.statusCode, 200)
  t.same(voidedAfter.json().voids.map((v: { request_id: string }) => v.request_id), ['acme-0'])

  // The CLI (its own store on the same file, as in another process) reruns the day over a new record.
  const daily = await get(app, dailyUrl)
  const tokens = daily.json().totals.total_tokens as number
  t.equal((await postEvents(app, events('acme', 2, 100))).statusCode, 200)
  t.equal((await get(app, dailyUrl, { 'if-none-match': daily.headers.etag as string })).statusCode, 304, 'a raw record alone changes no figure')
  const cli = await runCli(['run', '--date', DAY], await testEnv(dbPath), DEFAULT_NOW_MS)
  t.equal(cli.code, 0, cli.err)
  const after = await get(app, dailyUrl, { 'if-none-match': daily.headers.etag as string })
  t.equal(after.statusCode, 200)
  // The run also drops the record voided above (110 tokens) and adds the two new ones (110 + 112).
  t.equal(after.json().totals.total_tokens, tokens - 110 + 110 + 112, 'the CLI\'s run shows at once')
})

t.test('the default range follows the business day: a new day is a new answer', async (t) => {
  const { app, clock } = await seeded(t)
  const url = '/usage/clients/acme/daily'
  const november = await get(app, url)
  t.equal(november.json().from, '2026-11-01')
  t.equal(november.json().days.length, 1)
  clock.set(Date.parse('2026-12-01T12:00:00Z'))
  const december = await get(app, url, { 'if-none-match': november.headers.etag as string })
  t.equal(december.statusCode, 200)
  t.equal(december.json().from, '2026-12-01')
  t.same(december.json().days, [])
})

t.test('a tag belongs to one representation: query, money format, media type and caller scope', async (t) => {
  const { app } = await seeded(t, AUTH_ENV)
  const base = '/usage/clients/acme/daily?from=2026-11-01&to=2026-11-27'
  const tagOf = async (url: string, headers: Record<string, string>) => {
    const r = await get(app, url, headers)
    t.equal(r.statusCode, 200, `${url} ${JSON.stringify(headers)}`)
    return r.headers.etag as string
  }
  const tags = [
    await tagOf(base, bearer(READ)),
    await tagOf('/usage/clients/acme/daily?from=2026-11-02&to=2026-11-27', bearer(READ)),
    await tagOf(`${base}&money=string`, bearer(READ)),
    await tagOf(base, { ...bearer(READ), accept: 'text/csv' }),
    await tagOf(base, bearer(ADMIN)),
    await tagOf(base, bearer(ACME)),
  ]
  t.equal(new Set(tags).size, tags.length, 'all different')
  t.equal(await tagOf(base, bearer(READ)), tags[0], 'stable for one representation')
  t.equal(await tagOf(`${base}&format=csv`, bearer(READ)), await tagOf(`${base}&format=csv`, bearer(READ)))

  const csv = await get(app, base, { ...bearer(READ), accept: 'text/csv' })
  t.match(csv.headers['content-type'], /^text\/csv/)
  t.equal((await get(app, base, { ...bearer(READ), accept: 'text/csv', 'if-none-match': tags[3]! })).statusCode, 304)
  t.equal((await get(app, base, { ...bearer(READ), 'if-none-match': tags[3]! })).statusCode, 200, "the CSV tag does not match JSON")
  t.equal((await get(app, base, { ...bearer(ADMIN), 'if-none-match': tags[0]! })).statusCode, 200, "another scope's tag does not match")

  // Answers are cached per scope, after authentication: another client never gets acme's answer.
  t.equal((await get(app, base, bearer(GLOBEX))).statusCode, 403)
  t.equal((await get(app, base, { ...bearer(GLOBEX), 'if-none-match': tags[5]! })).statusCode, 403)
  t.equal((await get(app, base)).statusCode, 401)
  t.equal((await get(app, base, { 'if-none-match': tags[0]! })).statusCode, 401)
})

t.test('bad input is still refused, whatever If-None-Match says', async (t) => {
  const { app } = await seeded(t)
  const ok = await get(app, '/usage/clients/acme/daily?from=2026-11-01&to=2026-11-27')
  const bad = await get(app, '/usage/clients/acme/daily?from=2026-11-31&to=2026-11-27', { 'if-none-match': '*' })
  t.equal(bad.statusCode, 400)
  t.notOk(bad.headers.etag)
  t.equal(ok.statusCode, 200)
})
