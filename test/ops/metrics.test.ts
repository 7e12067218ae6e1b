// /metrics parses as strict Prometheus text and its batch counters move by exactly what runs did.
import t from 'tap'
import { register as globalRegistry } from 'prom-client'
import { dateToEpochSeconds, METRIC_NAMES } from '../../src/metrics.js'
import type { RateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { fixedClock } from '../../src/clock.js'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch, type EventInput, type TestApp } from '../helper.js'
import { failingSource } from './fixtures.js'
import { parsePrometheusText, sampleValue, type Family } from './prometheus.js'

const DAY = '2026-11-25'

const fixedRate: RateProvider = {
  resolveUsdPlnRate: async (usageDate) => ({
    ok: true,
    rate: {
      usage_date: usageDate,
      rate: '3.6512',
      effective_date: usageDate,
      table_no: '230/A/NBP/2026',
      source: 'nbp',
      policy: 'previous-business-day',
      fetched_at: new Date(DEFAULT_NOW_MS).toISOString(),
    },
  }),
}

async function scrape(app: TestApp['app']): Promise<Map<string, Family>> {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  if (!/^text\/plain; version=0\.0\.4/.test(String(res.headers['content-type']))) throw new Error(`content-type ${res.headers['content-type']}`)
  return parsePrometheusText(res.body)
}

function event(n: number, client: string, user: string, model: string): EventInput {
  return {
    request_id: `req-${n}`,
    client_org_id: client,
    model,
    external_user: user,
    input_tokens: 10 * n,
    output_tokens: n,
    cost_usd: '0.001',
    timestamp: `${DAY}T${String(8 + (n % 10)).padStart(2, '0')}:00:00+01:00`,
  }
}

t.test('batch counters move by exactly the runs figures', async (t) => {
  let source: ReturnType<typeof failingSource> | undefined
  const { app } = await buildTestApp(t, {
    rates: fixedRate,
    source: (db) => (source = failingSource(createSqliteSource({ db, clock: fixedClock(DEFAULT_NOW_MS), path: db.$client.name }))),
  })
  const before = await scrape(app)
  const runsOk = { status: 'succeeded', trigger: 'api' }
  t.equal(sampleValue(before, METRIC_NAMES.batchRuns, runsOk), 0)
  t.equal(sampleValue(before, METRIC_NAMES.batchRecords), 0)
  t.equal(sampleValue(before, METRIC_NAMES.lastSuccessDate), 0, 'no successful run yet')

  // 2 clients; acme: alice×m1 (3 records), alice×m2 (1), bob×m1 (2); globex: carol×m1 (2). 8 records.
  const events = [
    event(1, 'acme', 'alice', 'm1'),
    event(2, 'acme', 'alice', 'm1'),
    event(3, 'acme', 'alice', 'm1'),
    event(4, 'acme', 'alice', 'm2'),
    event(5, 'acme', 'bob', 'm1'),
    event(6, 'acme', 'bob', 'm1'),
    event(7, 'globex', 'carol', 'm1'),
    event(8, 'globex', 'carol', 'm1'),
  ]
  t.equal((await postEvents(app, events)).statusCode, 200)
  const first = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(first.status, 'succeeded')
  t.equal(first.records_processed, 8)
  // user×model rows: acme 3 + globex 1 = 4; model rows: acme 2 + globex 1 = 3; client rows: 2. 9 rows.
  t.equal(first.summaries_written, 9)

  const afterFirst = await scrape(app)
  t.equal(sampleValue(afterFirst, METRIC_NAMES.batchRuns, runsOk), 1)
  t.equal(sampleValue(afterFirst, METRIC_NAMES.batchRecords), 8)
  t.equal(sampleValue(afterFirst, METRIC_NAMES.batchSummaries), 9)
  t.equal(sampleValue(afterFirst, METRIC_NAMES.batchCorrections), 0, 'a first run corrects nothing')
  t.equal(sampleValue(afterFirst, `${METRIC_NAMES.batchDayDuration}_count`, { status: 'succeeded' }), 1)
  t.equal(sampleValue(afterFirst, METRIC_NAMES.lastSuccessDate), dateToEpochSeconds(DAY))
  t.equal(dateToEpochSeconds(DAY), Date.parse('2026-11-25T00:00:00Z') / 1000)

  // One late record for globex/carol/m1 changes its user×model row, its model row and its client row.
  t.equal((await postEvents(app, [event(9, 'globex', 'carol', 'm1')])).statusCode, 200)
  const rerun = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(rerun.data_corrections, 3)
  const afterRerun = await scrape(app)
  t.equal(sampleValue(afterRerun, METRIC_NAMES.batchRuns, runsOk), 2)
  t.equal(sampleValue(afterRerun, METRIC_NAMES.batchRecords), 8 + 9)
  t.equal(sampleValue(afterRerun, METRIC_NAMES.batchSummaries), 9 + 9)
  t.equal(sampleValue(afterRerun, METRIC_NAMES.batchCorrections), 3)

  // A failed day: counted by status, its figures not added.
  source!.failing = true
  const failed = (await runBatch(app, { date: '2026-11-26' })).json().runs[0]
  t.equal(failed.status, 'failed')
  const afterFail = await scrape(app)
  t.equal(sampleValue(afterFail, METRIC_NAMES.batchRuns, { status: 'failed', trigger: 'api' }), 1)
  t.equal(sampleValue(afterFail, METRIC_NAMES.batchRuns, runsOk), 2)
  t.equal(sampleValue(afterFail, METRIC_NAMES.batchRecords), 17)
  t.equal(sampleValue(afterFail, `${METRIC_NAMES.batchDayDuration}_count`, { status: 'failed' }), 1)
  t.equal(sampleValue(afterFail, METRIC_NAMES.lastSuccessDate), dateToEpochSeconds(DAY), 'a failure moves no success gauge')

  // A run by another trigger lands under its own label.
  source!.failing = false
  const scheduled = await app.services.batch.runDate('2026-11-26', 'schedule')
  t.equal(scheduled.status, 'succeeded')
  const afterScheduled = await scrape(app)
  t.equal(sampleValue(afterScheduled, METRIC_NAMES.batchRuns, { status: 'succeeded', trigger: 'schedule' }), 1)
  t.equal(sampleValue(afterScheduled, METRIC_NAMES.lastSuccessDate), dateToEpochSeconds('2026-11-26'))
})

t.test('NBP and InfluxDB hooks of the Services metrics API', async (t) => {
  const { app } = await buildTestApp(t)
  const { metrics } = app.services
  metrics.nbpFetchFailed()
  metrics.nbpFetchFailed()
  metrics.influxQuery(250, true)
  metrics.influxQuery(500, true)
  metrics.influxQuery(1_500, false)
  const families = await scrape(app)
  t.equal(sampleValue(families, METRIC_NAMES.nbpFailures), 2)
  t.equal(sampleValue(families, METRIC_NAMES.influxErrors), 1)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_count`, { outcome: 'ok' }), 2)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_count`, { outcome: 'error' }), 1)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_sum`, { outcome: 'ok' }), 0.75)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_bucket`, { outcome: 'ok', le: '0.1' }), 0)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_bucket`, { outcome: 'ok', le: '0.25' }), 1)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_bucket`, { outcome: 'ok', le: '0.5' }), 2)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_bucket`, { outcome: 'error', le: '1' }), 0)
  t.equal(sampleValue(families, `${METRIC_NAMES.influxDuration}_bucket`, { outcome: 'error', le: '2.5' }), 1)
})

t.test('HTTP metrics are labelled by route pattern, never by raw URL; process metrics present', async (t) => {
  const { app } = await buildTestApp(t)
  await app.inject({ method: 'GET', url: '/batch/runs/12345' })
  await app.inject({ method: 'GET', url: '/batch/runs/777' })
  await app.inject({ method: 'GET', url: '/no/such/path?x=1' })
  const families = await scrape(app)
  const http = families.get(METRIC_NAMES.httpRequests)!
  t.equal(http.type, 'counter')
  const routes = new Set(http.samples.map((s) => s.labels.route))
  t.ok(routes.has('/batch/runs/:id'))
  t.ok(routes.has('unmatched'))
  t.notOk([...routes].some((r) => /12345|777|no\/such/.test(r!)), 'no raw URL in any label')
  t.equal(sampleValue(families, METRIC_NAMES.httpRequests, { method: 'GET', route: '/batch/runs/:id', status_code: '404' }), 2)
  t.equal(families.get(METRIC_NAMES.httpDuration)!.type, 'histogram')
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    t.ok(families.has(name), `process metric ${name}`)
  }
  for (const name of Object.values(METRIC_NAMES)) t.ok(families.has(name), `${name} is exposed`)
})

t.test('each app has its own registry; the global one stays empty', async (t) => {
  const a = await buildTestApp(t)
  const b = await buildTestApp(t)
  a.app.services.metrics.nbpFetchFailed()
  t.equal(sampleValue(await scrape(a.app), METRIC_NAMES.nbpFailures), 1)
  t.equal(sampleValue(await scrape(b.app), METRIC_NAMES.nbpFailures), 0)
  t.equal(globalRegistry.getMetricsAsArray().length, 0)
})

t.test('/metrics needs no token even when auth is on', async (t) => {
  const { app } = await buildTestApp(t, { env: { API_ADMIN_TOKEN: 'admin-secret-value' } })
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/batch/runs' })).statusCode, 401)
})
