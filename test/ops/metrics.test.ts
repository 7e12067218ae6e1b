// /metrics parses as strict Prometheus text and its batch counters move by exactly what runs did.
import t from 'tap'
import { register as globalRegistry } from 'prom-client'
import {
  addTotals,
  DAY_DURATION_BUCKETS_S,
  databaseLedger,
  dateToEpochSeconds,
  DROPPED_DEFAULT_METRICS,
  INFLUXDB_ONLY_METRICS,
  METRIC_NAMES,
} from '../../src/metrics.js'
import { CLOSED_RUN_STATUSES, RUN_TRIGGERS } from '../../src/db/enums.js'
import type { ClosedRunTotals } from '../../src/db/store.js'
import { createBatchService } from '../../src/batch/service.js'
import pino from 'pino'
import type { RateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { fixedClock } from '../../src/clock.js'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch, type EventInput, type TestApp } from '../helper.js'
import { failingSource, pingCheckedSource, startInfluxPing } from './fixtures.js'
import { runCli } from '../support/cli.js'
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
    source: (store) => (source = failingSource(createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS) }))),
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
  const embedded = Object.values(METRIC_NAMES).filter((name) => !INFLUXDB_ONLY_METRICS.has(name))
  t.ok(embedded.length > 10)
  for (const name of embedded) t.ok(families.has(name), `${name} is exposed`)
  for (const name of INFLUXDB_ONLY_METRICS) t.notOk(families.has(name), `${name} only in the InfluxDB-first mode`)
  for (const name of DROPPED_DEFAULT_METRICS) t.notOk(families.has(name), `${name} (a gauge named like a counter) is not exposed`)
  t.ok(families.has('nodejs_active_handles'), 'the per-type gauge it summed stays')
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

t.test('every status × trigger of usage_batch_runs_total exists at 0 on the first scrape', async (t) => {
  const { app } = await buildTestApp(t)
  const family = (await scrape(app)).get(METRIC_NAMES.batchRuns)!
  t.equal(family.type, 'counter')
  const expected = CLOSED_RUN_STATUSES.flatMap((status) => RUN_TRIGGERS.map((trigger) => `${status}/${trigger}`)).sort()
  t.equal(expected.length, 20, '5 closed statuses × 4 triggers')
  t.same(family.samples.map((s) => `${s.labels.status}/${s.labels.trigger}`).sort(), expected)
  t.ok(family.samples.every((s) => s.value === 0))
  t.notOk(family.samples.some((s) => s.labels.status === 'running'), 'a running run is not closed')
  const withErrors = (await scrape(app)).get(METRIC_NAMES.batchRunsWithClientErrors)!
  t.same(withErrors.samples.map((s) => [s.labels.trigger, s.value]), RUN_TRIGGERS.map((trigger) => [trigger, 0]))
  const duration = (await scrape(app)).get(METRIC_NAMES.batchDayDuration)!
  t.same(new Set(duration.samples.map((s) => s.labels.status)), new Set(CLOSED_RUN_STATUSES), 'every status has its (empty) histogram')
})

t.test('runs closed by any process on the database are counted, and a restart does not reset them', async (t) => {
  const dir = t.testdir({})
  const { app, store, dbPath } = await buildTestApp(t, { dir, rates: fixedRate })
  const runs = (families: Map<string, Family>, status: string, trigger: string) => sampleValue(families, METRIC_NAMES.batchRuns, { status, trigger })

  // A CLI backfill: its own runtime, its own batch service, the same SQLite file.
  const ok = await runCli(['run', '--date', '2026-11-24'], { SQLITE_PATH: dbPath }, DEFAULT_NOW_MS)
  t.equal(ok.code, 0, ok.err)
  // A CLI run against an InfluxDB that does not answer: the run fails, and says why.
  const failed = await runCli(
    ['run', '--date', '2026-11-25'],
    { SQLITE_PATH: dbPath, INFLUXDB_URL: 'http://127.0.0.1:1', INFLUXDB_DATABASE: 'usage', INFLUXDB_TIMEOUT_MS: '2000' },
    DEFAULT_NOW_MS,
  )
  t.equal(failed.code, 1)
  t.match(failed.err + failed.out, /InfluxDB query dialect not known yet/)
  // A run left behind by a process on another host, dead for an hour: the next CLI run's recovery abandons it.
  const stale = new Date(DEFAULT_NOW_MS - 3_600_000).toISOString()
  await store.runs.claim({ date: '2026-11-26', trigger: 'schedule', dataSource: 'sqlite', startedAt: stale, owner: '4242@another-host' })
  t.equal((await runCli(['run', '--date', '2026-11-23'], { SQLITE_PATH: dbPath }, DEFAULT_NOW_MS)).code, 0)

  const families = await scrape(app)
  t.equal(runs(families, 'succeeded_with_warnings', 'cli'), 2, 'two CLI days (PLN missing: NBP is unreachable in tests)')
  t.equal(runs(families, 'failed', 'cli'), 1, 'the failed CLI run, which raises UsageBatchRunFailed')
  t.equal(runs(families, 'abandoned', 'schedule'), 1, 'the dead run, marked by another process')
  t.equal(sampleValue(families, METRIC_NAMES.lastSuccessDate), dateToEpochSeconds('2026-11-24'))

  // A restart: a new app on the same file starts from the ledger, not from 0.
  await app.close()
  const restarted = await buildTestApp(t, { dir, rates: fixedRate })
  const after = await scrape(restarted.app)
  t.equal(runs(after, 'succeeded_with_warnings', 'cli'), 2)
  t.equal(runs(after, 'failed', 'cli'), 1)
  t.equal(runs(after, 'abandoned', 'schedule'), 1)
})

t.test('runs with per-client errors are counted by trigger, whatever their status', async (t) => {
  const { app, store, clock } = await buildTestApp(t, { rates: fixedRate })
  t.equal((await postEvents(app, [event(1, 'acme', 'alice', 'm1'), event(2, 'globex', 'carol', 'm1')])).statusCode, 200)
  // Client by client, as the InfluxQL source is queried; globex's query fails.
  const inner = createSqliteSource({ store, clock })
  t.teardown(() => inner.close())
  const batch = createBatchService({
    store,
    source: {
      ...inner,
      listClients: async () => ['acme', 'globex'],
      aggregate: (window, options) => {
        if (options?.clientOrgId === 'globex') throw new Error('query for globex failed')
        return inner.aggregate(window, options)
      },
    },
    rates: fixedRate,
    clock,
    log: pino({ level: 'silent' }),
    timeZone: 'Europe/Warsaw',
    defaultMarkupRate: '1.3',
    perClientConcurrency: 2,
  })
  const run = await batch.runDate(DAY, 'schedule')
  t.equal(JSON.parse(run.client_errors).length, 1)
  // A run of another status with client errors (as a run recorded by another version would be).
  const other = (await store.runs.claim({ date: '2026-11-24', trigger: 'api', dataSource: 'sqlite', startedAt: new Date(clock.now()).toISOString(), owner: 'test' })).run
  await store.runs.finish(other.id, {
    status: 'succeeded_with_warnings',
    finished_at: new Date(clock.now()).toISOString(),
    duration_ms: 5,
    client_errors: [{ client_org_id: 'initech', error: 'pricing missing' }],
  })
  const families = await scrape(app)
  t.equal(sampleValue(families, METRIC_NAMES.batchRunsWithClientErrors, { trigger: 'schedule' }), 1)
  t.equal(sampleValue(families, METRIC_NAMES.batchRunsWithClientErrors, { trigger: 'api' }), 1)
  t.equal(sampleValue(families, METRIC_NAMES.batchRunsWithClientErrors, { trigger: 'cli' }), 0)
  t.equal(sampleValue(families, METRIC_NAMES.batchRuns, { status: run.status, trigger: 'schedule' }), 1)
})

t.test('a database that cannot be read leaves the batch families out of the scrape instead of reporting 0', async (t) => {
  // Created a month ago, so days are due and days_behind has to ask the ledger.
  const { app, db } = await buildTestApp(t, { dbCreatedMs: DEFAULT_NOW_MS - 30 * 86_400_000 })
  await runBatch(app, { date: DAY })
  t.equal(sampleValue(await scrape(app), METRIC_NAMES.batchRuns, { status: 'succeeded_with_warnings', trigger: 'api' }), 1)
  db.$client.exec('ALTER TABLE influxdb_batch_runs RENAME TO influxdb_batch_runs_moved')
  t.teardown(() => db.$client.exec('ALTER TABLE influxdb_batch_runs_moved RENAME TO influxdb_batch_runs'))
  const broken = await scrape(app)
  t.same(broken.get(METRIC_NAMES.batchRuns)?.samples, [], 'no sample rather than a counter reset to 0')
  t.same(broken.get(METRIC_NAMES.batchRecords)?.samples, [])
  t.same(broken.get(METRIC_NAMES.daysBehind)?.samples, [])
  t.ok(broken.get(METRIC_NAMES.httpRequests)!.samples.length > 0, 'the rest of the scrape is served')
})

t.test('InfluxDB-first: usage_batch_influxdb_up follows InfluxDB', async (t) => {
  const influx = await startInfluxPing()
  const { app, clock } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url },
    source: (store) => pingCheckedSource(createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS) }), influx.url),
  })
  t.equal(sampleValue(await scrape(app), METRIC_NAMES.influxUp), 1)
  await influx.close()
  clock.advance(60_000)
  const down = await scrape(app)
  t.equal(down.get(METRIC_NAMES.influxUp)?.samples.length, 1)
  t.equal(sampleValue(down, METRIC_NAMES.influxUp), 0)
})

t.test('the ledger totals kept below the oldest running run always equal a full count', async (t) => {
  const { store, config, clock } = await buildTestApp(t)
  const ledger = databaseLedger(store, config, clock)
  const bounds = DAY_DURATION_BUCKETS_S.map((s) => s * 1000)
  const sorted = (rows: ClosedRunTotals[]) => [...rows].sort((a, b) => `${a.status}/${a.trigger}`.localeCompare(`${b.status}/${b.trigger}`))
  const same = async (what: string) => {
    // A fresh read of the whole ledger, nothing known settled beforehand.
    const fresh = await store.runs.closedTotals(bounds, 0)
    const full = sorted(addTotals(fresh.newlySettled, fresh.unsettled))
    t.same(sorted(await ledger.closedRuns(bounds)), full, what)
    return full
  }
  const at = () => new Date(clock.now()).toISOString()
  const open = async (date: string, trigger: 'api' | 'cli' | 'schedule') =>
    (await store.runs.claim({ date, trigger, dataSource: 'sqlite', startedAt: at(), owner: `1@h-${date}` })).run
  const close = (id: number, status: 'succeeded' | 'failed', durationMs: number) =>
    store.runs.finish(id, { status, finished_at: at(), duration_ms: durationMs, records_processed: id * 10, summaries_written: id, data_corrections: 1 })

  t.same(await same('empty ledger'), [])
  const a = await open('2026-11-01', 'api')
  const b = await open('2026-11-02', 'cli')
  const c = await open('2026-11-03', 'schedule')
  await same('three running runs')
  await close(b.id, 'succeeded', 40)
  await close(c.id, 'failed', 70_000)
  await same('two closed above a running one: not settled yet, still counted')
  const d = await open('2026-11-04', 'api')
  await close(d.id, 'succeeded', 200)
  await same('another closed above the running one')
  // The oldest run's process dies; recovery abandons it, which settles everything.
  t.equal((await store.runs.abandonDead(() => false, at())).length, 1)
  const afterAbandon = await same('all closed')
  t.ok(afterAbandon.some((r) => r.status === 'abandoned' && r.runs === 1))
  await close((await open('2026-11-05', 'cli')).id, 'succeeded', 1)
  const final = await same('one more after the settled part')
  t.equal(final.reduce((n, r) => n + r.runs, 0), 5)
  t.equal(a.id < b.id && b.id < c.id, true)
})
