// Each /health state reached by a real condition, with its status code; /health/ready beside it.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { fixedClock } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { openDb } from '../../src/db/open.js'
import { REMOTE_CHECK_TTL_MS } from '../../src/routes/health.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, DEFAULT_NOW_MS, runBatch, type TestApp } from '../helper.js'
import { failingSource, httpRateProvider, pingCheckedSource, startInfluxPing, startLocalNbp } from './fixtures.js'

// DEFAULT_NOW_MS is 2026-11-28 13:00 Warsaw: yesterday is 2026-11-27; with the default
// BATCH_CATCHUP_DAYS=7 the checked window is 2026-11-20 .. 2026-11-26.
const WINDOW_FROM = '2026-11-20'
const WINDOW_TO = '2026-11-26'

async function health(app: TestApp['app']) {
  const res = await app.inject({ method: 'GET', url: '/health' })
  return { code: res.statusCode, body: res.json() as { status: string; influxdb_first_enabled: boolean; data_source: string; services: Record<string, { status: string; detail: Record<string, unknown> }> } }
}

async function runWindow(t: Test, app: TestApp['app']) {
  const res = await runBatch(app, { from: WINDOW_FROM, to: WINDOW_TO })
  t.equal(res.statusCode, 200, 'window runs done')
  t.ok((res.json() as { runs: Array<{ status: string }> }).runs.every((r) => r.status.startsWith('succeeded')))
  return res
}

t.test('healthy when every component is fine; a day missing in the catch-up window degrades', async (t) => {
  const nbp = await startLocalNbp()
  t.teardown(() => nbp.close())
  let failures = 0
  const clock = fixedClock(DEFAULT_NOW_MS)
  const { app } = await buildTestApp(t, { rates: httpRateProvider(nbp.url, clock, () => failures++) })

  const fresh = await health(app)
  t.equal(fresh.code, 200)
  t.equal(fresh.body.status, 'degraded', 'no run in the catch-up window yet')
  t.same(fresh.body.services.scheduler!.detail.missing_days, ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26'])
  t.equal(fresh.body.services.nbp!.status, 'unknown', 'no NBP attempt yet')

  await runWindow(t, app)
  const after = await health(app)
  t.equal(after.code, 200)
  t.equal(after.body.status, 'healthy')
  t.equal(after.body.influxdb_first_enabled, false)
  t.equal(after.body.data_source, 'sqlite')
  t.equal(after.body.services.sqlite!.status, 'up')
  t.equal(after.body.services.sqlite!.detail.writable, true)
  t.equal(after.body.services.influxdb!.status, 'disabled')
  t.equal(after.body.services.nbp!.status, 'up')
  t.equal(after.body.services.nbp!.detail.last_rate, '3.6512')
  t.equal(after.body.services.scheduler!.status, 'disabled', 'scheduler off in tests, nothing wrong')
  t.same(after.body.services.scheduler!.detail.missing_days, [])
  t.equal(after.body.services.scheduler!.detail.last_success_date, WINDOW_TO)
  t.equal(failures, 0)

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', checks: { sqlite: 'up', influxdb: 'disabled' } })
})

t.test('NBP server down: degraded (200), service still serves, failure counted', async (t) => {
  const nbp = await startLocalNbp()
  let failures = 0
  const clock = fixedClock(DEFAULT_NOW_MS)
  const { app } = await buildTestApp(t, { rates: httpRateProvider(nbp.url, clock, () => failures++) })
  await runWindow(t, app)
  t.equal((await health(app)).body.status, 'healthy')

  await nbp.close()
  clock.advance(60_000)
  const rerun = await runBatch(app, { date: '2026-11-27' })
  t.equal(rerun.json().runs[0].status, 'succeeded_with_warnings', 'USD rows written, PLN missing')
  t.equal(failures, 1)

  const { code, body } = await health(app)
  t.equal(code, 200)
  t.equal(body.status, 'degraded')
  t.equal(body.services.nbp!.status, 'down')
  t.match(body.services.nbp!.detail.last_error, /NBP unreachable/)
  t.equal(body.services.sqlite!.status, 'up')
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200, 'NBP is no readiness condition')
})

t.test('last scheduled run failed: degraded until a later run of that date succeeds', async (t) => {
  let source: ReturnType<typeof failingSource> | undefined
  const { app } = await buildTestApp(t, {
    source: (db) => (source = failingSource(createSqliteSource({ db, clock: fixedClock(DEFAULT_NOW_MS), path: db.$client.name }))),
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
  t.equal(repaired.json().runs[0].status, 'succeeded_with_warnings')
  t.equal((await health(app)).body.status, 'healthy', 'an admin rerun repaired the failed day')
})

t.test('SQLite not writable: unhealthy (503), not ready', async (t) => {
  const dir = t.testdir({})
  const dbPath = join(dir, 'usage.db')
  // Migrate once, then serve from a read-only connection: as root, file modes would not stop writes.
  openDb({ path: dbPath }).$client.close()
  const db = openDb({ path: dbPath, readonly: true })
  const source = createSqliteSource({ db, clock: fixedClock(DEFAULT_NOW_MS), path: dbPath })
  const config = loadConfig({ SQLITE_PATH: dbPath, BATCH_SCHEDULER_ENABLED: 'false', LOG_LEVEL: 'silent' })
  const app = await buildApp(config, { db, source, clock: fixedClock(DEFAULT_NOW_MS) })
  t.teardown(async () => {
    await app.close()
    await source.close()
    db.$client.close()
  })

  const { code, body } = await health(app)
  t.equal(code, 503)
  t.equal(body.status, 'unhealthy')
  t.equal(body.services.sqlite!.status, 'down')
  t.equal(body.services.sqlite!.detail.writable, false)
  t.match(body.services.sqlite!.detail.error, /readonly/)

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', checks: { sqlite: 'down', influxdb: 'disabled' } })
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200, 'liveness checks no dependency')
})

t.test('InfluxDB stopped (InfluxDB-first): unhealthy (503); checks cached so probes do not hammer it', async (t) => {
  const influx = await startInfluxPing()
  const { app, clock } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url, BATCH_CATCHUP_DAYS: '0' },
    source: (db) => pingCheckedSource(createSqliteSource({ db, clock: fixedClock(DEFAULT_NOW_MS), path: db.$client.name }), influx.url),
  })

  const up = await health(app)
  t.equal(up.code, 200)
  t.equal(up.body.status, 'healthy')
  t.equal(up.body.influxdb_first_enabled, true)
  t.equal(up.body.data_source, 'influxdb_first')
  t.equal(up.body.services.influxdb!.status, 'up')
  t.equal(up.body.services.influxdb!.detail.version, '1.6.7~rc0')
  t.equal(influx.hits, 1)

  // Probes within the cache period reuse the result: InfluxDB sees one ping, not one per probe.
  for (let i = 0; i < 5; i++) {
    t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
    t.equal((await health(app)).code, 200)
  }
  t.equal(influx.hits, 1, 'ten probes, one ping')

  await influx.close()
  clock.advance(REMOTE_CHECK_TTL_MS - 1)
  t.equal((await health(app)).code, 200, 'still the cached answer just before the period ends')
  clock.advance(1)
  const down = await health(app)
  t.equal(down.code, 503)
  t.equal(down.body.status, 'unhealthy')
  t.equal(down.body.services.influxdb!.status, 'down')
  t.equal(down.body.services.sqlite!.status, 'up')
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', checks: { sqlite: 'up', influxdb: 'down' } })
})

t.test('concurrent probes share one InfluxDB check in flight', async (t) => {
  const influx = await startInfluxPing()
  t.teardown(() => influx.close())
  const { app } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url, BATCH_CATCHUP_DAYS: '0' },
    source: (db) => pingCheckedSource(createSqliteSource({ db, clock: fixedClock(DEFAULT_NOW_MS), path: db.$client.name }), influx.url),
  })
  const answers = await Promise.all(Array.from({ length: 8 }, () => app.inject({ method: 'GET', url: '/health' })))
  t.same(answers.map((a) => a.statusCode), Array(8).fill(200))
  t.equal(influx.hits, 1)
})
