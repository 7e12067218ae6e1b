// DATABASE_URL through the production composition root (createServices + buildApp), in process:
// the store and the raw store are PostgreSQL's, no SQLite file appears, and the names the API
// adds for it (docs/postgresql.md#what-the-api-says) say so. The several-replica behaviour is
// test/e2e/replicas.test.ts's.
import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { buildApp } from '../src/app.js'
import { fixedClock } from '../src/clock.js'
import { loadConfig } from '../src/config.js'
import { createServices, openStore } from '../src/services.js'
import { createMigratedDatabase, postgresUnavailable, sharedPostgres } from './helpers/postgres.js'
import { deadPort } from './helpers/fake-nbp.js'

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
  const server = await sharedPostgres(t)

  async function start(t: Test, env: Record<string, string>) {
    const dir = mkdtempSync(join(tmpdir(), 'pg-mode-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const url = await createMigratedDatabase(t, server)
    const config = loadConfig({
      DATABASE_URL: url,
      SQLITE_PATH: join(dir, 'data', 'usage.db'),
      LOG_LEVEL: 'silent',
      NBP_API_URL: `http://127.0.0.1:${await deadPort()}/api`,
      NBP_MAX_RETRIES: '0',
      BATCH_CATCHUP_DAYS: '0',
      ...env,
    })
    const services = await createServices(config, { log: pino({ level: 'silent' }), clock: fixedClock(Date.parse('2026-11-28T12:00:00Z')) })
    const app = await buildApp(config, services)
    await app.ready()
    t.teardown(async () => {
      await services.stop(0)
      await app.close()
      await services.close()
    })
    return { app, services, dir, config }
  }

  t.test('the store, the raw store and what /health says are PostgreSQL; no SQLite file', async (t) => {
    const { app, services, dir, config } = await start(t, { BATCH_SCHEDULER_ENABLED: 'false' })
    t.equal(services.store.engine, 'postgresql')
    t.equal(services.source.dataSource, 'postgresql')
    const posted = await app.inject({
      method: 'POST',
      url: '/usage/events',
      payload: { events: [{ request_id: 'p-1', client_org_id: 'acme', model: 'm', input_tokens: 1, output_tokens: 2, cost_usd: '0.5', timestamp: '2026-11-20T10:00:00Z' }] },
    })
    t.same(posted.json(), { accepted: 1, duplicates: 0 })
    const run = await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: '2026-11-20' } })
    t.match(run.json().runs, [{ status: 'succeeded_with_warnings', data_source: 'postgresql', records_processed: 1 }])
    const daily = await app.inject({ url: '/usage/clients/acme/daily?from=2026-11-20&to=2026-11-20&money=string' })
    t.match(daily.json().days, [{ raw_cost_usd: '0.500000000', markup_cost_usd: '0.650000000', markup_cost_pln: null }])

    const health = await app.inject({ url: '/health' })
    const body = health.json()
    t.equal(body.data_source, 'postgresql')
    t.match(body.services.database, { status: 'up', detail: { engine: 'postgresql', writable: true, migrations_applied: true } })
    t.same(body.services.sqlite, body.services.database, '`sqlite` names the same store')
    t.equal(body.raw_retention.mode, 'postgresql')
    t.same((await app.inject({ url: '/health/ready' })).json(), { status: 'ok', checks: { sqlite: 'up', database: 'up' } })
    const status = await app.inject({ url: '/batch/status' })
    t.equal(status.json().scheduler.leader, false, 'the scheduler is off here: this replica runs no ticks')
    const storage = await app.inject({ url: '/batch/storage' })
    t.equal(storage.statusCode, 200)
    t.equal(storage.json().retention.mode, 'postgresql')
    t.match(storage.json().sqlite.path, /^postgresql:\/\/127\.0\.0\.1:\d+\//)

    const again = await openStore(config)
    t.equal(again.engine, 'postgresql', 'openStore (the CLI) opens the same database')
    await again.close()
    t.same(readdirSync(dir), [], 'no SQLite file, not even its folder')
    t.equal(existsSync(config.SQLITE_PATH), false)
  })

  t.test('with the scheduler on, a lone replica takes the leader lock', async (t) => {
    const { app, services } = await start(t, {})
    await services.scheduler.start(app.scheduler)
    t.equal((await app.inject({ url: '/batch/status' })).json().scheduler.leader, true)
    await services.scheduler.stop()
    t.equal((await app.inject({ url: '/batch/status' })).json().scheduler.leader, false, 'stopped, it leads no more')
  })
}
