// SIGKILL in the middle of a large day: on restart the run is `abandoned`, the date is redone by
// catch-up, and the rows equal those of a clean run over the same raw data.
import t from 'tap'
import { join } from 'node:path'
import pino from 'pino'
import { buildApp } from '../../src/app.js'
import { systemClock, yesterday } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { openDb } from '../../src/db/sqlite/open.js'
import type { SqliteStore } from '../../src/db/sqlite/store.js'
import type { BatchRunRow } from '../../src/db/store.js'
import { createServices } from '../../src/services.js'
import { METRIC_NAMES } from '../../src/metrics.js'
import { parsePrometheusText, sampleValue } from '../ops/prometheus.js'
import { LOOPBACK_ONLY_ENV, startCli, waitFor } from '../support/children.js'
import { LARGE_DAY, copyDatabase, insertDay, prepareDatabase, stableSummaries, summaryCount } from '../support/data.js'
import { cleanRunRows, rowCount } from '../support/reference.js'

const TZ = 'Europe/Warsaw'
const silent = pino({ level: 'silent' })

t.test('a run killed with SIGKILL is abandoned on restart and redone to the same rows', async (t) => {
  const dir = t.testdir({})
  const dbPath = join(dir, 'usage.db')
  // The child runs on the real clock, so the day must be a real "yesterday".
  const day = yesterday(systemClock, TZ)
  prepareDatabase(dbPath, (db) => insertDay(db, day, LARGE_DAY))
  copyDatabase(dbPath, join(dir, 'clean.db'))
  const expected = (await cleanRunRows(join(dir, 'clean.db'), [day])).get(day)!
  t.ok(expected.client_daily_usage!.length > 0, 'the day has usage')

  const child = startCli(t, ['run', '--date', day], { SQLITE_PATH: dbPath })
  const watcher = openDb({ path: dbPath, migrate: false })
  t.teardown(() => watcher.$client.close())
  const running = await waitFor('the CLI run to be running', () =>
    watcher.$client.prepare("SELECT * FROM influxdb_batch_runs WHERE processing_date = ? AND status = 'running'").get(day) as BatchRunRow | undefined,
  )
  child.process.kill('SIGKILL')
  const exit = await child.exited
  t.equal(exit.signal, 'SIGKILL')
  t.equal(watcher.$client.prepare('SELECT status FROM influxdb_batch_runs WHERE id = ?').pluck().get(running.id), 'running', 'killed mid-run: the ledger still says running')
  const leftBehind = summaryCount(watcher, day)
  t.ok(leftBehind === 0 || leftBehind === rowCount(expected), `the day is written completely or not at all (${leftBehind} rows)`)

  // Restart: the server's runtime, with the scheduler on, catching up yesterday only.
  const config = loadConfig({ ...LOOPBACK_ONLY_ENV, SQLITE_PATH: dbPath, BATCH_CATCHUP_DAYS: '1', LOG_LEVEL: 'silent' })
  const services = await createServices(config, { log: silent })
  const app = await buildApp(config, services)
  t.teardown(async () => {
    await services.stop(0)
    await app.close()
    await services.close()
  })
  await services.scheduler.start()
  const abandoned = await services.store.runs.get(running.id)
  t.equal(abandoned!.status, 'abandoned', 'the dead process’s run is abandoned at start')
  t.match(abandoned!.error_message, /stopped before it finished/)
  const scraped = parsePrometheusText((await app.inject({ url: '/metrics' })).body)
  t.equal(sampleValue(scraped, METRIC_NAMES.batchRuns, { status: 'abandoned', trigger: 'cli' }), 1, 'the abandoned run is counted in usage_batch_runs_total')
  const redone = await services.scheduler.catchUpDone()
  t.same(redone.map((r) => [r.processing_date, r.trigger, r.status]), [[day, 'catchup', 'succeeded_with_warnings']])
  t.same(stableSummaries((services.store as SqliteStore).db, day), expected, 'the final rows equal a clean run’s rows')
})
