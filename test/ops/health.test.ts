// Each /health state reached by a real condition, with its status code; /health/ready beside it.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { fixedClock } from '../../src/clock.js'
import { openDb } from '../../src/db/sqlite/open.js'
import { REMOTE_CHECK_TTL_MS } from '../../src/sources/check.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, DEFAULT_NOW_MS, runBatch, type TestApp } from '../helpers/app.js'
import { startFakeNbp } from '../helpers/fake-nbp.js'
import { parsePrometheusText } from '../helpers/prometheus.js'
import { failingSource, pingCheckedSource, startInfluxPing } from '../helpers/sources.js'
import { METRIC_NAMES } from '../../src/metrics.js'

// DEFAULT_NOW_MS is 2026-11-28 13:00 Warsaw: yesterday is 2026-11-27; with the default
// BATCH_CATCHUP_DAYS=7 the catch-up window is 2026-11-21 .. 2026-11-27. runWindow runs the week
// before yesterday, so a test starts with days that succeeded.
const WINDOW_FROM = '2026-11-20'
const WINDOW_TO = '2026-11-26'

async function health(app: TestApp['app']) {
  const res = await app.inject({ method: 'GET', url: '/health' })
  return { code: res.statusCode, body: res.json() as { status: string; influxdb_first_enabled: boolean; data_source: string; services: Record<string, { status: string; detail: Record<string, unknown> }> } }
}

async function runWindow(t: Test, app: TestApp['app']) {
  const res = await runBatch(app, { from: WINDOW_FROM, to: WINDOW_TO })
  t.equal(res.statusCode, 200, 'window runs done')
  const statuses = (res.json() as { runs: Array<{ status: string }> }).runs.map((r) => r.status)
  t.equal(statuses.length, 7, 'one run per day of the window')
  t.same(statuses.filter((s) => !s.startsWith('succeeded')), [], 'each of them succeeded')
  return res
}

/** This replica runs a scheduler (configured on; its timer never started here, so nothing runs by itself). */
const WITH_SCHEDULER = { BATCH_SCHEDULER_ENABLED: 'true' }

t.test('a fresh install is healthy: scheduler off is disabled, and no day is owed from before the database existed', async (t) => {
  const dir = t.testdir({})
  const { app } = await buildTestApp(t, { dir })
  const off = await health(app)
  t.equal(off.code, 200)
  t.equal(off.body.status, 'healthy', 'nothing was due since the database exists')
  t.equal(off.body.services.scheduler!.status, 'disabled', 'scheduler off: disabled, not degraded')
  t.same(off.body.services.scheduler!.detail.missing_days, [])
  t.equal(off.body.services.scheduler!.detail.database_created_at, new Date(DEFAULT_NOW_MS).toISOString())
  t.same(off.body.services.scheduler!.detail.catch_up_window, { from: '2026-11-21', to: '2026-11-27' })

  const withScheduler = await buildTestApp(t, { dir, env: WITH_SCHEDULER })
  const on = await health(withScheduler.app)
  t.equal(on.body.status, 'healthy')
  t.equal(on.body.services.scheduler!.status, 'up')
  t.same(on.body.services.scheduler!.detail.next_run, { at: '2026-11-29T12:00:00.000Z', local: '2026-11-29 13:00 Europe/Warsaw' })
  t.same(on.body.services.scheduler!.detail.missing_days, [])
})

t.test('scheduler off on a replica whose database owes days: the days are listed, the replica is not degraded', async (t) => {
  const { app } = await buildTestApp(t, { dbCreatedMs: DEFAULT_NOW_MS - 30 * 86_400_000 })
  const { body } = await health(app)
  t.equal(body.status, 'healthy', 'another replica (or nobody) runs the batch: not this one\'s fault')
  t.equal(body.services.scheduler!.status, 'disabled')
  t.same(body.services.scheduler!.detail.missing_days, ['2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26', '2026-11-27'])
})

t.test('missing days are the due days of the catch-up window: none before it, yesterday only once its run is due', async (t) => {
  // Thursday's table prices Friday 2026-11-27 (previous business day).
  const nbp = await startFakeNbp({ mids: { '2026-11-26': 3.6512 } })
  t.teardown(() => nbp.close())
  // 2026-11-28 12:30 Warsaw: yesterday (2026-11-27) is due at 13:00.
  const beforeDue = Date.parse('2026-11-28T11:30:00Z')
  const { app, clock: appClock } = await buildTestApp(t, {
    nowMs: beforeDue,
    dbCreatedMs: beforeDue - 30 * 86_400_000,
    env: { ...WITH_SCHEDULER, NBP_API_URL: nbp.baseUrl },
  })
  // Every day of the catch-up window before yesterday succeeded; 2026-11-20, just before it, never ran.
  t.equal((await runBatch(app, { from: '2026-11-21', to: '2026-11-26' })).statusCode, 200)
  const early = await health(app)
  t.same(early.body.services.scheduler!.detail.missing_days, [], 'the day before the window is not flagged; yesterday is not due yet')
  t.equal(early.body.status, 'healthy')

  appClock.set(Date.parse('2026-11-28T12:00:00Z'))
  const due = await health(app)
  t.same(due.body.services.scheduler!.detail.missing_days, ['2026-11-27'], 'due at 13:00 Warsaw and not done')
  t.equal(due.body.services.scheduler!.status, 'degraded')
  t.equal(due.body.status, 'degraded')

  t.equal((await runBatch(app, { date: '2026-11-27' })).statusCode, 200)
  const done = await health(app)
  t.same(done.body.services.scheduler!.detail.missing_days, [])
  t.equal(done.body.status, 'healthy')
  t.equal(done.body.services.nbp!.status, 'up')
  t.match(done.body.services.nbp!.detail, { last_rate: '3.6512', last_rate_date: '2026-11-26', last_error: null })
  t.equal(nbp.urls().at(-1), '/api/exchangerates/rates/a/usd/2026-11-17/2026-11-26/?format=json', 'asked NBP for the ten days before')
  t.equal(done.body.services.sqlite!.detail.writable, true)
  t.same(done.body.services.database, done.body.services.sqlite, 'the store under both names')
  t.equal(done.body.services.database!.detail.engine, 'sqlite')
  t.equal(done.body.services.influxdb!.status, 'disabled')
  t.equal(done.body.influxdb_first_enabled, false)
  t.equal(done.body.data_source, 'sqlite')
  t.equal(done.body.services.scheduler!.detail.last_success_date, '2026-11-27')

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', checks: { sqlite: 'up', database: 'up' } })
})

t.test('NBP server down: degraded (200), service still serves, failure counted', async (t) => {
  const nbp = await startFakeNbp()
  // The test stops it on purpose; the teardown only covers a failure before that.
  t.teardown(() => nbp.close().catch(() => undefined))
  const { app, clock } = await buildTestApp(t, { env: { NBP_API_URL: nbp.baseUrl } })
  const failures = async () => {
    const family = parsePrometheusText((await app.inject({ method: 'GET', url: '/metrics' })).body).get(METRIC_NAMES.nbpFailures)
    t.equal(family?.samples.length, 1, `${METRIC_NAMES.nbpFailures} is exposed`)
    return family?.samples[0]?.value
  }
  await runWindow(t, app)
  const up = await health(app)
  t.equal(up.body.status, 'healthy')
  t.equal(up.body.services.nbp!.status, 'up')
  t.equal(await failures(), 0)

  await nbp.close()
  clock.advance(60_000)
  const rerun = await runBatch(app, { date: '2026-11-27' })
  t.equal(rerun.json().runs[0].status, 'succeeded_with_warnings', 'USD rows written, PLN missing')
  t.equal(await failures(), 1, 'the failed NBP request is counted')

  const { code, body } = await health(app)
  t.equal(code, 200)
  t.equal(body.status, 'degraded')
  t.equal(body.services.nbp!.status, 'down')
  t.match(body.services.nbp!.detail.last_error, /^NBP rate for 2026-11-27 unavailable: .*ECONNREFUSED/, 'the production provider says why')
  t.equal(body.services.sqlite!.status, 'up')
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200, 'NBP is no readiness condition')
})

t.test('last scheduled run failed: degraded until a later run of that date succeeds', async (t) => {
  let source: ReturnType<typeof failingSource> | undefined
  const nbp = await startFakeNbp()
  t.teardown(() => nbp.close())
  const { app } = await buildTestApp(t, {
    source: (store) => (source = failingSource(createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS) }))),
    env: { ...WITH_SCHEDULER, NBP_API_URL: nbp.baseUrl },
  })
  await runWindow(t, app)
  t.equal((await health(app)).body.status, 'healthy')

  source!.failing = true
  const failed = await app.services.batch.runDate('2026-11-27', 'schedule')
  t.equal(failed.status, 'failed')
  const degraded = await health(app)
  t.equal(degraded.code, 200)
  t.equal(degraded.body.status, 'degraded')
  t.equal(degraded.body.services.scheduler!.status, 'degraded')
  t.match(degraded.body.services.scheduler!.detail.last_scheduled_run, { id: failed.id, status: 'failed', trigger: 'schedule' })

  source!.failing = false
  const repaired = await runBatch(app, { date: '2026-11-27' })
  t.equal(repaired.json().runs[0].status, 'succeeded')
  t.equal((await health(app)).body.status, 'healthy', 'an admin rerun repaired the failed day')
})

t.test('SQLite not writable: unhealthy (503), still ready: its reads are served', async (t) => {
  const dir = t.testdir({})
  const dbPath = join(dir, 'usage.db')
  // Migrate once, then serve from a read-only connection: as root, file modes would not stop writes.
  openDb({ path: dbPath }).$client.close()
  const { app } = await buildTestApp(t, { dir, deps: { sqlite: { readonly: true } } })

  const { code, body } = await health(app)
  t.equal(code, 503)
  t.equal(body.status, 'unhealthy')
  t.equal(body.services.sqlite!.status, 'down')
  t.equal(body.services.sqlite!.detail.writable, false)
  t.match(body.services.sqlite!.detail.error, /did not accept a write \(SQLITE_READONLY\); see the service log/, 'the engine\'s code, in our words')
  t.notMatch(JSON.stringify(body), /attempt to write a readonly database/, 'never the driver\'s message in a 503 body')

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200, 'a read-only database still serves every summary read')
  t.same(ready.json(), { status: 'ok', checks: { sqlite: 'up', database: 'up' } })
  t.equal((await app.inject({ method: 'GET', url: '/usage/clients?from=2026-11-01&to=2026-11-30' })).statusCode, 200, 'and it does')
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200, 'liveness checks no dependency')
})

t.test('not ready when the database does not answer or its migrations are missing', async (t) => {
  const dir = t.testdir({})
  const dbPath = join(dir, 'usage.db')
  const { app, db: unmigrated } = await buildTestApp(t, { dir, deps: { sqlite: { migrate: false } } })
  t.equal(unmigrated.$client.name, dbPath)
  const missing = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(missing.statusCode, 503)
  t.same(missing.json(), { status: 'unavailable', checks: { sqlite: 'down', database: 'down' }, reason: 'migrations not applied' })

  unmigrated.$client.close()
  const closed = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(closed.statusCode, 503)
  t.same(closed.json(), { status: 'unavailable', checks: { sqlite: 'down', database: 'down' }, reason: 'the database did not answer; see the service log' })
  const overall = await health(app)
  t.equal(overall.code, 503, '/health says so too, without failing itself')
  t.equal(overall.body.status, 'unhealthy')
  t.equal(overall.body.services.sqlite!.detail.error, 'the database did not accept a write; see the service log')
  t.notMatch(JSON.stringify(overall.body), /not open/, 'never the driver\'s message in a 503 body')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200)
})

t.test('InfluxDB stopped (InfluxDB-first): degraded (200), still ready; checks cached so probes do not hammer it', async (t) => {
  const influx = await startInfluxPing()
  const { app, clock } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url, BATCH_CATCHUP_DAYS: '0' },
    source: (store) => pingCheckedSource(createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS) }), influx.url),
  })

  const up = await health(app)
  t.equal(up.code, 200)
  t.equal(up.body.status, 'healthy')
  t.equal(up.body.influxdb_first_enabled, true)
  t.equal(up.body.data_source, 'influxdb_first')
  t.equal(up.body.services.influxdb!.status, 'up')
  t.equal(up.body.services.influxdb!.detail.version, '1.6.7~rc0')
  t.equal(influx.hits, 1)

  // Probes and scrapes within the cache period reuse the result: InfluxDB sees one ping, not one per probe.
  for (let i = 0; i < 5; i++) {
    t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
    t.equal((await health(app)).code, 200)
    t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^usage_batch_influxdb_up 1$/m)
  }
  t.equal(influx.hits, 1, 'fifteen probes and scrapes, one ping; readiness never pings')

  await influx.close()
  clock.advance(REMOTE_CHECK_TTL_MS - 1)
  t.equal((await health(app)).code, 200, 'still the cached answer just before the period ends')
  clock.advance(1)
  const down = await health(app)
  t.equal(down.code, 200, 'every summary read is still served')
  t.equal(down.body.status, 'degraded')
  t.equal(down.body.services.influxdb!.status, 'down')
  t.equal(down.body.services.sqlite!.status, 'up')
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200, 'InfluxDB never takes readiness down: the replica stays in the Service')
  t.same(ready.json(), { status: 'ok', checks: { sqlite: 'up', database: 'up' } })
  t.equal((await app.inject({ method: 'GET', url: '/usage/clients?from=2026-11-01&to=2026-11-30' })).statusCode, 200)
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^usage_batch_influxdb_up 0$/m)
})

t.test('concurrent probes share one InfluxDB check in flight', async (t) => {
  const influx = await startInfluxPing()
  t.teardown(() => influx.close())
  const { app } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url, BATCH_CATCHUP_DAYS: '0' },
    source: (store) => pingCheckedSource(createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS) }), influx.url),
  })
  const answers = await Promise.all(Array.from({ length: 8 }, () => app.inject({ method: 'GET', url: '/health' })))
  t.same(answers.map((a) => a.statusCode), Array(8).fill(200))
  t.equal(influx.hits, 1)
})
