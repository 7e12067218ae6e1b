// The embedded default end to end, through HTTP on a real SQLite file: ingest → batch → reads.
import t from 'tap'
import { join } from 'node:path'
import {
  buildTestApp,
  databaseDigest,
  expectNano,
  expectTimesRate,
  nanoText,
  postEvents,
  runBatch,
  summaryRows,
  type EventInput,
  gatedRates,
} from '../helper.js'
import { fixedClock } from '../../src/clock.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'

const DAY = '2026-11-20'

/** A deterministic day of usage with tiny and large costs; expectations are summed separately below. */
function dataset(): EventInput[] {
  const events: EventInput[] = []
  const costs = ['0.000000150', '0.000123456', '1.234567891', '0.000000001', '12.5', '0.3']
  let n = 0
  for (const client of ['acme', 'globex']) {
    for (const user of ['alice', 'bob', '']) {
      for (const model of ['anthropic/claude-sonnet-4', 'openai/gpt-4o']) {
        for (let i = 0; i < 3; i++) {
          n += 1
          events.push({
            request_id: `${client}-${user || 'nouser'}-${model}-${i}`,
            client_org_id: client,
            model,
            external_user: user === '' ? undefined : user,
            input_tokens: 100 * n,
            output_tokens: 7 * n,
            cost_usd: costs[n % costs.length]!,
            // Spread over the local day: 00:05 Warsaw (23:05Z the day before) up to late evening.
            timestamp: new Date(Date.parse('2026-11-19T23:05:00Z') + n * 17 * 60_000).toISOString(),
          })
        }
      }
    }
  }
  return events
}

function expectedByClient(events: EventInput[]) {
  const out = new Map<string, { raw: bigint; tokens: number; input: number; output: number; requests: number; users: Set<string> }>()
  for (const e of events) {
    const c = out.get(e.client_org_id) ?? { raw: 0n, tokens: 0, input: 0, output: 0, requests: 0, users: new Set<string>() }
    c.raw += expectNano(String(e.cost_usd))
    c.input += e.input_tokens
    c.output += e.output_tokens
    c.tokens += e.input_tokens + e.output_tokens
    c.requests += 1
    c.users.add(e.external_user || 'unknown')
    out.set(e.client_org_id, c)
  }
  return out
}

t.test('exact daily sums to the nano-unit, through HTTP', async (t) => {
  const { app, db } = await buildTestApp(t)
  const events = dataset()
  const ingest = await postEvents(app, events)
  t.equal(ingest.statusCode, 200, ingest.body)
  t.same(ingest.json(), { accepted: events.length, duplicates: 0 })

  const run = await runBatch(app, { date: DAY })
  t.equal(run.statusCode, 200, run.body)
  const [r] = run.json().runs
  t.equal(r.status, 'succeeded_with_warnings', 'no rate provider yet: PLN stays null and the run says so')
  t.match(r.warnings[0], /markup_cost_pln not computed/)
  t.equal(r.records_processed, events.length)
  t.equal(r.clients_processed, 2)
  t.equal(r.data_corrections, 0, 'first run corrects nothing')
  // 2 clients × (3 users × 2 models + 2 models + 1 client row)
  t.equal(r.summaries_written, 2 * (6 + 2 + 1))

  for (const [client, exp] of expectedByClient(events)) {
    const res = await app.inject({ url: `/usage/clients/${client}/daily?from=2026-11-01&to=2026-11-30` })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.days.length, 1)
    const day = body.days[0]
    const markup = expectTimesRate(exp.raw, '1.3')
    t.equal(day.usage_date, DAY)
    t.equal(day.raw_cost_usd, Number(nanoText(exp.raw)), `${client} raw cost ${nanoText(exp.raw)}`)
    t.equal(day.markup_cost_usd, Number(nanoText(markup)), `${client} markup ${nanoText(markup)}`)
    t.equal(day.markup_cost_pln, null)
    t.equal(day.total_tokens, exp.tokens)
    t.equal(day.input_tokens, exp.input)
    t.equal(day.output_tokens, exp.output)
    t.equal(day.total_requests, exp.requests)
    t.equal(day.unique_users, exp.users.size, 'absent external_user is its own user, `unknown`')
    t.equal(day.markup_rate, 1.3)
    t.same(body.totals.raw_cost_usd, day.raw_cost_usd)
    t.equal(body.totals.days_with_usage, 1)

    // The stored integers are exact, not just the JSON numbers.
    const [stored] = summaryRows(db, 'client_daily_usage', DAY).filter((row) => row.client_org_id === client)
    t.equal(BigInt(stored!.raw_cost_nano_usd as number), exp.raw)
    t.equal(BigInt(stored!.markup_cost_nano_usd as number), markup)
  }

  const users = summaryRows(db, 'client_user_daily_usage', DAY)
  t.ok(users.some((u) => u.external_user === 'unknown'), 'records without a user are kept as `unknown`, not dropped')
  // Each user×model row is priced from its own raw sum.
  for (const u of users) {
    t.equal(BigInt(u.markup_cost_nano_usd as number), expectTimesRate(BigInt(u.raw_cost_nano_usd as number), '1.3'))
  }
})

t.test('float noise and tiny costs are rounded half-even on ingest', async (t) => {
  const { app, db } = await buildTestApp(t)
  const base = { client_org_id: 'c', model: 'm', input_tokens: 1, output_tokens: 1, timestamp: '2026-11-20T10:00:00Z' }
  const res = await postEvents(app, [
    { ...base, request_id: 'a', cost_usd: 0.30000000000000004 },
    { ...base, request_id: 'b', cost_usd: '0.0000000005' },
    { ...base, request_id: 'c', cost_usd: '0.0000000015' },
    { ...base, request_id: 'd', cost_usd: 1.5e-7 },
  ])
  t.equal(res.statusCode, 200, res.body)
  const stored = db.$client.prepare('SELECT request_id, cost_nano_usd FROM usage_events ORDER BY request_id').all()
  t.same(stored, [
    { request_id: 'a', cost_nano_usd: 300_000_000 },
    { request_id: 'b', cost_nano_usd: 0 },
    { request_id: 'c', cost_nano_usd: 2 },
    { request_id: 'd', cost_nano_usd: 150 },
  ])
})

t.test('events at 23:30 and 00:30 local on both DST change days land on their local dates', async (t) => {
  const { app } = await buildTestApp(t)
  const base = { client_org_id: 'dst', model: 'm', external_user: 'u', input_tokens: 1, output_tokens: 0, cost_usd: '1' }
  // Offsets are written out: CET is +01:00, CEST +02:00.
  const cases: Array<[string, string]> = [
    ['2026-03-28T23:30:00+01:00', '2026-03-28'],
    ['2026-03-29T00:30:00+01:00', '2026-03-29'],
    ['2026-03-29T23:30:00+02:00', '2026-03-29'],
    ['2026-03-30T00:30:00+02:00', '2026-03-30'],
    ['2026-10-24T23:30:00+02:00', '2026-10-24'],
    ['2026-10-25T00:30:00+02:00', '2026-10-25'],
    ['2026-10-25T23:30:00+01:00', '2026-10-25'],
    ['2026-10-26T00:30:00+01:00', '2026-10-26'],
    // The same instants written in UTC must land identically.
    ['2026-03-29T21:30:00Z', '2026-03-29'],
    ['2026-10-25T22:30:00Z', '2026-10-25'],
  ]
  const ingest = await postEvents(
    app,
    cases.map(([timestamp], i) => ({ ...base, request_id: `dst-${i}`, timestamp, input_tokens: 10 ** i })),
  )
  t.equal(ingest.statusCode, 200, ingest.body)
  const run = await runBatch(app, { from: '2026-03-27', to: '2026-10-27' })
  t.equal(run.statusCode, 200)
  const days = (await app.inject({ url: '/usage/clients/dst/daily?from=2026-03-01&to=2026-10-31' })).json().days as Array<{
    usage_date: string
    input_tokens: number
  }>
  const expected = new Map<string, number>()
  cases.forEach(([, date], i) => expected.set(date, (expected.get(date) ?? 0) + 10 ** i))
  t.same(
    days.map((d) => [d.usage_date, d.input_tokens]),
    [...expected].sort(([a], [b]) => a.localeCompare(b)),
    'each token bucket (a distinct power of ten) is on the expected local date',
  )
})

t.test('a duplicate request_id never counts twice', async (t) => {
  const { app } = await buildTestApp(t)
  const e = { request_id: 'same', client_org_id: 'c', model: 'm', input_tokens: 5, output_tokens: 5, cost_usd: '0.5', timestamp: '2026-11-20T10:00:00Z' }
  t.same((await postEvents(app, [e])).json(), { accepted: 1, duplicates: 0 })
  t.same((await postEvents(app, [e, e])).json(), { accepted: 0, duplicates: 2 }, 'a retry and a repeat within the batch')
  t.same((await postEvents(app, [{ ...e, request_id: 'other' }, e])).json(), { accepted: 1, duplicates: 1 })
  await runBatch(app, { date: DAY })
  const day = (await app.inject({ url: `/usage/clients/c/daily?from=${DAY}&to=${DAY}` })).json().days[0]
  t.equal(day.total_requests, 2)
  t.equal(day.raw_cost_usd, 1)
})

t.test('a rerun over unchanged data yields identical rows and no corrections', async (t) => {
  const { app, db, clock } = await buildTestApp(t)
  await postEvents(app, dataset())
  const first = (await runBatch(app, { date: DAY })).json().runs[0]
  const snapshot = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage'].map((tb) => summaryRows(db, tb, DAY))
  clock.advance(3_600_000)
  const second = (await runBatch(app, { date: DAY })).json().runs[0]
  t.not(second.id, first.id)
  t.equal(second.data_corrections, 0)
  t.equal(second.summaries_written, first.summaries_written)
  const again = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage'].map((tb) => summaryRows(db, tb, DAY))
  t.same(again, snapshot, 'byte-identical rows, created_at, updated_at and batch_run_id included')
})

t.test('a late event and a rerun correct the day and count the correction', async (t) => {
  const { app, db } = await buildTestApp(t)
  await postEvents(app, dataset())
  await runBatch(app, { date: DAY })
  const before = summaryRows(db, 'client_daily_usage', DAY).find((r) => r.client_org_id === 'acme')!
  const late = {
    request_id: 'late-1',
    client_org_id: 'acme',
    model: 'new/model',
    external_user: 'carol',
    input_tokens: 1,
    output_tokens: 2,
    cost_usd: '0.000000150',
    timestamp: '2026-11-20T22:59:59.999+01:00',
  }
  t.same((await postEvents(app, [late])).json(), { accepted: 1, duplicates: 0 })
  const rerun = (await runBatch(app, { date: DAY })).json().runs[0]
  // A new user×model row and a new model row are added; acme's client row changes.
  t.equal(rerun.data_corrections, 3)
  const after = summaryRows(db, 'client_daily_usage', DAY).find((r) => r.client_org_id === 'acme')!
  t.equal(BigInt(after.raw_cost_nano_usd as number) - BigInt(before.raw_cost_nano_usd as number), 150n)
  t.equal((after.total_requests as number) - (before.total_requests as number), 1)
  t.equal(after.unique_users, (before.unique_users as number) + 1)
  t.equal(after.batch_run_id, rerun.id)
  const globex = summaryRows(db, 'client_daily_usage', DAY).find((r) => r.client_org_id === 'globex')!
  t.not(globex.batch_run_id, rerun.id, 'an unchanged client row is left as it was')
})

t.test('a client whose raw rows disappear loses its summary rows on rerun', async (t) => {
  const { app, db } = await buildTestApp(t)
  await postEvents(app, dataset())
  await runBatch(app, { date: DAY })
  const globexRows = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']
    .map((tb) => summaryRows(db, tb, DAY).filter((r) => r.client_org_id === 'globex').length)
    .reduce((a, b) => a + b, 0)
  t.equal(globexRows, 9)
  db.$client.prepare("DELETE FROM usage_events WHERE client_org_id = 'globex'").run()
  const rerun = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(rerun.data_corrections, 9)
  t.equal(rerun.clients_processed, 1)
  for (const tb of ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']) {
    t.equal(summaryRows(db, tb, DAY).filter((r) => r.client_org_id === 'globex').length, 0, `${tb} has no globex rows`)
    t.ok(summaryRows(db, tb, DAY).some((r) => r.client_org_id === 'acme'), `${tb} keeps acme`)
  }
  const body = (await app.inject({ url: `/usage/clients/globex/daily?from=${DAY}&to=${DAY}` })).json()
  t.same(body.days, [])
  t.equal(body.totals.raw_cost_usd, 0)
})

t.test('20 concurrent POST /batch/run for one date create exactly one run', async (t) => {
  // The rate lookup waits on a gate, so the first run is still in flight while the others arrive.
  const { rates, release } = gatedRates()
  const { app, db } = await buildTestApp(t, { rates })
  await postEvents(app, dataset())
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const responses = await Promise.all(
    Array.from({ length: 20 }, () =>
      fetch(`${address}/batch/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ date: DAY }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { runs: Array<{ id: number; status: string }> } })),
    ),
  )
  t.ok(responses.every((r) => r.status === 202), 'all accepted')
  const ids = new Set(responses.map((r) => r.body.runs[0]!.id))
  t.equal(ids.size, 1, 'every caller got the same run back')
  t.ok(responses.every((r) => r.body.runs[0]!.status === 'running'))
  release()
  // A 21st caller while the run is still finishing joins it as well.
  const done = await app.services.batch.runDate(DAY, 'api')
  t.equal(done.id, [...ids][0])
  t.equal(done.status, 'succeeded_with_warnings')
  const count = db.$client.prepare('SELECT count(*) AS n FROM influxdb_batch_runs WHERE processing_date = ?').get(DAY) as { n: number }
  t.equal(count.n, 1, 'exactly one run in the ledger')
})

t.test('the run ledger records the run and can be read back', async (t) => {
  const { app } = await buildTestApp(t)
  await postEvents(app, dataset())
  const run = (await runBatch(app, { date: DAY })).json().runs[0]
  const one = await app.inject({ url: `/batch/runs/${run.id}` })
  t.equal(one.statusCode, 200)
  t.match(one.json(), {
    id: run.id,
    processing_date: DAY,
    trigger: 'api',
    status: 'succeeded_with_warnings',
    data_source: 'sqlite',
    records_processed: 36,
    errors: [],
  })
  t.type(one.json().duration_ms, 'number')
  t.equal((await app.inject({ url: '/batch/runs/999' })).statusCode, 404)
})

t.test('a range runs each date oldest first; an empty POST runs yesterday', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await runBatch(app, { from: '2026-11-24', to: '2026-11-26' })
  t.same(
    res.json().runs.map((r: { processing_date: string }) => r.processing_date),
    ['2026-11-24', '2026-11-25', '2026-11-26'],
  )
  const ids = res.json().runs.map((r: { id: number }) => r.id)
  t.same(ids, [...ids].sort((a: number, b: number) => a - b), 'oldest date gets the first run')
  const empty = await app.inject({ method: 'POST', url: '/batch/run?wait=true' })
  t.equal(empty.statusCode, 200, empty.body)
  t.equal(empty.json().runs[0].processing_date, '2026-11-27', 'yesterday in Warsaw on 2026-11-28')
})

t.test('every bad input gets a 4xx and leaves the database unchanged', async (t) => {
  const { app, db } = await buildTestApp(t)
  await postEvents(app, dataset())
  await runBatch(app, { date: DAY })
  const digest = databaseDigest(db)
  const good = { request_id: 'x', client_org_id: 'c', model: 'm', input_tokens: 1, output_tokens: 1, cost_usd: '0.1', timestamp: '2026-11-20T10:00:00Z' }
  const cases: Array<{ name: string; method: 'GET' | 'POST'; url: string; payload?: unknown; headers?: Record<string, string>; status?: number }> = [
    { name: 'invalid date', method: 'POST', url: '/batch/run', payload: { date: '2026-02-30' } },
    { name: 'not a date', method: 'POST', url: '/batch/run', payload: { date: 'yesterday' } },
    { name: 'today', method: 'POST', url: '/batch/run', payload: { date: '2026-11-28' } },
    { name: 'future date', method: 'POST', url: '/batch/run', payload: { date: '2027-01-01' } },
    { name: 'future range end', method: 'POST', url: '/batch/run', payload: { from: '2026-11-20', to: '2026-11-29' } },
    { name: 'from after to', method: 'POST', url: '/batch/run', payload: { from: '2026-11-10', to: '2026-11-01' } },
    { name: 'range over 366 days', method: 'POST', url: '/batch/run', payload: { from: '2025-01-01', to: '2026-11-01' } },
    { name: 'half a range', method: 'POST', url: '/batch/run', payload: { from: '2026-11-01' } },
    { name: 'date and range', method: 'POST', url: '/batch/run', payload: { date: '2026-11-01', from: '2026-11-01', to: '2026-11-02' } },
    { name: 'unknown field', method: 'POST', url: '/batch/run', payload: { date: '2026-11-01', force: true } },
    { name: 'wrong type', method: 'POST', url: '/batch/run', payload: { date: 20261101 } },
    { name: 'wait not a boolean', method: 'POST', url: '/batch/run?wait=perhaps', payload: { date: '2026-11-01' } },
    { name: 'body not JSON', method: 'POST', url: '/batch/run', payload: '{"date":', headers: { 'content-type': 'application/json' } },
    { name: 'body a string', method: 'POST', url: '/batch/run', payload: '"2026-11-01"', headers: { 'content-type': 'application/json' } },
    { name: 'run id not a number', method: 'GET', url: '/batch/runs/abc' },
    { name: 'runs from after to', method: 'GET', url: '/batch/runs?from=2026-11-10&to=2026-11-01' },
    { name: 'runs bad status', method: 'GET', url: '/batch/runs?status=done' },
    { name: 'runs bad cursor', method: 'GET', url: '/batch/runs?cursor=not-ours' },
    { name: 'runs limit 0', method: 'GET', url: '/batch/runs?limit=0' },
    { name: 'daily bad from', method: 'GET', url: '/usage/clients/acme/daily?from=2026-13-01' },
    { name: 'daily from after to', method: 'GET', url: '/usage/clients/acme/daily?from=2026-11-10&to=2026-11-01' },
    { name: 'daily range over 366 days', method: 'GET', url: '/usage/clients/acme/daily?from=2025-01-01&to=2026-11-01' },
    { name: 'daily unknown query field', method: 'GET', url: '/usage/clients/acme/daily?month=2026-11' },
    { name: 'events: naive timestamp', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, timestamp: '2026-11-20T10:00:00' }] } },
    { name: 'events: date-only timestamp', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, timestamp: '2026-11-20' }] } },
    { name: 'events: impossible timestamp', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, timestamp: '2026-02-30T10:00:00Z' }] } },
    { name: 'events: negative tokens', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, input_tokens: -1 }] } },
    { name: 'events: fractional tokens', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, input_tokens: 1.5 }] } },
    { name: 'events: tokens as text', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, input_tokens: '5' }] } },
    { name: 'events: negative cost', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, cost_usd: -0.1 }] } },
    { name: 'events: NaN cost', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, cost_usd: 'NaN' }] } },
    { name: 'events: Infinity cost', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, cost_usd: 'Infinity' }] } },
    { name: 'events: huge exponent', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, cost_usd: '1e400' }] } },
    { name: 'events: number overflowing to Infinity', method: 'POST', url: '/usage/events', payload: `{"events":[${JSON.stringify(good).replace('"0.1"', '1e400')}]}`, headers: { 'content-type': 'application/json' } },
    { name: 'events: cost too large', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, cost_usd: '2000000' }] } },
    { name: 'events: missing model', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, model: undefined }] } },
    { name: 'events: empty client', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, client_org_id: '' }] } },
    { name: 'events: blank client', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, client_org_id: '   ' }] } },
    { name: 'events: request_id too long', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, request_id: 'x'.repeat(201) }] } },
    { name: 'events: unknown field', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, api_key: 'k' }] } },
    { name: 'events: empty list', method: 'POST', url: '/usage/events', payload: { events: [] } },
    { name: 'events: bare array', method: 'POST', url: '/usage/events', payload: [good] },
    { name: 'events: one bad among good', method: 'POST', url: '/usage/events', payload: { events: [good, { ...good, request_id: 'y', timestamp: 'now' }] } },
    { name: 'events: far future', method: 'POST', url: '/usage/events', payload: { events: [{ ...good, timestamp: '2030-01-01T00:00:00Z' }] } },
    {
      name: 'events: 5,001 records',
      method: 'POST',
      url: '/usage/events',
      payload: { events: Array.from({ length: 5001 }, (_, i) => ({ ...good, request_id: `bulk-${i}` })) },
    },
    {
      name: 'events: body over the limit',
      method: 'POST',
      url: '/usage/events',
      payload: { events: [{ ...good, model: 'm'.repeat(9 * 1024 * 1024) }] },
      status: 413,
    },
    { name: 'events: not JSON', method: 'POST', url: '/usage/events', payload: 'request_id=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
  ]
  for (const c of cases) {
    const res = await app.inject({ method: c.method, url: c.url, payload: c.payload as string, headers: c.headers })
    if (c.status) t.equal(res.statusCode, c.status, `${c.name}: ${res.statusCode}`)
    else t.ok(res.statusCode >= 400 && res.statusCode < 500, `${c.name}: ${res.statusCode} ${res.body.slice(0, 160)}`)
    const body = res.json()
    t.equal(body.statusCode, res.statusCode, `${c.name}: JSON error body`)
    t.type(body.message, 'string')
    t.notMatch(res.body, /at .*\.(ts|js):\d+/, `${c.name}: no stack trace`)
  }
  t.equal(databaseDigest(db), digest, 'no table changed')
})

t.test('per-item errors name the record and the field', async (t) => {
  const { app, db } = await buildTestApp(t)
  const good = { request_id: 'x', client_org_id: 'c', model: 'm', input_tokens: 1, output_tokens: 1, cost_usd: '0.1', timestamp: '2026-11-20T10:00:00Z' }
  const res = await postEvents(app, [
    good,
    { ...good, request_id: 'y', timestamp: '2026-11-20T10:00:00' },
    { ...good, request_id: 'z', cost_usd: 'abc' },
  ])
  t.equal(res.statusCode, 400)
  const errors = res.json().errors as Array<{ index: number; field: string; message: string }>
  t.ok(errors.some((e) => e.index === 1 && e.field === 'timestamp' && /naive/.test(e.message)), JSON.stringify(errors))
  t.ok(errors.some((e) => e.index === 2 && e.field.startsWith('cost_usd')), JSON.stringify(errors))
  t.equal((db.$client.prepare('SELECT count(*) AS n FROM usage_events').get() as { n: number }).n, 0, 'nothing stored')
})

t.test('a day read in a worker thread gives the same summaries as a day read in-thread, reruns included', async (t) => {
  // Production reads days of 20,000+ records in a worker; workerMinRecords 0 sends this small day there.
  const dir = t.testdir({ worker: {}, thread: {} })
  const inWorker = await buildTestApp(t, {
    dir: join(dir, 'worker'),
    source: (store) => createSqliteSource({ store, clock: fixedClock(0), workerMinRecords: 0 }),
  })
  const inThread = await buildTestApp(t, {
    dir: join(dir, 'thread'),
    source: (store) => createSqliteSource({ store, clock: fixedClock(0), workerMinRecords: 1e9 }),
  })
  const values = (rows: Record<string, unknown>[]) =>
    rows.map(({ id: _id, created_at: _c, updated_at: _u, batch_run_id: _b, ...rest }) => rest)
  for (const { app } of [inWorker, inThread]) {
    t.equal((await postEvents(app, dataset())).statusCode, 200)
    t.equal((await runBatch(app, { date: DAY })).json().runs[0].status, 'succeeded_with_warnings')
  }
  for (const table of ['client_daily_usage', 'client_model_daily_usage', 'client_user_daily_usage']) {
    const rows = summaryRows(inWorker.db, table, DAY)
    t.ok(rows.length > 0, `${table} has rows`)
    t.same(values(rows), values(summaryRows(inThread.db, table, DAY)), table)
  }
  // A rerun over a changed day: one client gone, one event added; the worker path corrects the same.
  for (const { app, db } of [inWorker, inThread]) {
    db.$client.prepare("DELETE FROM usage_events WHERE client_org_id = 'globex'").run()
    await postEvents(app, [{ ...dataset()[0]!, request_id: 'late-1' }])
    const rerun = (await runBatch(app, { date: DAY })).json().runs[0]
    t.equal(rerun.status, 'succeeded_with_warnings')
  }
  const [a, b] = [inWorker, inThread].map(({ db }) => (db.$client.prepare('SELECT data_corrections FROM influxdb_batch_runs ORDER BY id DESC LIMIT 1').pluck().get() as number))
  t.equal(a, b, 'the same corrections counted')
  t.ok((a ?? 0) > 0, 'the rerun corrected rows')
  for (const table of ['client_daily_usage', 'client_model_daily_usage', 'client_user_daily_usage']) {
    t.same(values(summaryRows(inWorker.db, table, DAY)), values(summaryRows(inThread.db, table, DAY)), `${table} after the rerun`)
  }
  t.notOk(summaryRows(inWorker.db, 'client_daily_usage', DAY).some((r) => r.client_org_id === 'globex'), 'the client without records lost its rows')
})
