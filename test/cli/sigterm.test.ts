// SIGTERM while the server's catch-up is in the middle of a large day: exit 0 within 10 s, the
// running day finishes (or is interrupted) whole, queued days close `interrupted` and keep their
// previous summaries untouched.
import t from 'tap'
import { join } from 'node:path'
import pino from 'pino'
import { addDays, systemClock, yesterday } from '../../src/clock.js'
import { openDb, type Db } from '../../src/db/sqlite/open.js'
import { openSqliteStore } from '../../src/db/sqlite/store.js'
import type { BatchRunRow } from '../../src/db/schema.js'
import { startCli, waitFor } from '../support/children.js'
import { LARGE_DAY, copyDatabase, insertDay, prepareDatabase, stableSummaries } from '../support/data.js'
import { cleanRunRows } from '../support/reference.js'
import { createBatchService } from '../../src/batch/service.js'
import { noRateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'

const TZ = 'Europe/Warsaw'
const EXIT_DEADLINE_MS = 10_000

function allRows(db: Db, date: string) {
  const out: Record<string, unknown[]> = {}
  for (const table of ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']) {
    out[table] = db.$client.prepare(`SELECT * FROM "${table}" WHERE usage_date = ? ORDER BY id`).all(date)
  }
  return out
}

t.test('SIGTERM mid-catch-up: exit 0 within 10 s and no day half-written', async (t) => {
  const dir = t.testdir({})
  const dbPath = join(dir, 'usage.db')
  const last = yesterday(systemClock, TZ)
  const days = [addDays(last, -2), addDays(last, -1), last]
  prepareDatabase(dbPath, (db) => {
    for (const day of days) insertDay(db, day, LARGE_DAY)
  })
  copyDatabase(dbPath, join(dir, 'clean.db'))
  const expected = await cleanRunRows(join(dir, 'clean.db'), days)

  // The newest day was consolidated before; without a rate its PLN is missing, so catch-up retries it.
  {
    const store = openSqliteStore({ path: dbPath })
    const source = createSqliteSource({ store, clock: systemClock })
    const batch = createBatchService({ store, source, rates: noRateProvider, clock: systemClock, log: pino({ level: 'silent' }), timeZone: TZ, defaultMarkupRate: '1.3' })
    await batch.runDate(last, 'api')
    await source.close()
    await store.close()
  }
  const watcher = openDb({ path: dbPath, migrate: false })
  t.teardown(() => watcher.$client.close())
  const previous = allRows(watcher, last)

  // No waiting for the "listening" line: the day's grouped query holds the child's event loop, so
  // its stdout may arrive late. The ledger is the source of truth.
  const server = startCli(t, ['serve'], { SQLITE_PATH: dbPath, PORT: '0', BATCH_CATCHUP_DAYS: '3' })
  await waitFor('catch-up to claim its dates', () =>
    watcher.$client.prepare("SELECT id FROM influxdb_batch_runs WHERE trigger = 'catchup' AND status = 'running'").get(),
  )

  const signalledAt = Date.now()
  server.process.kill('SIGTERM')
  const exit = await server.exited
  const tookMs = Date.now() - signalledAt
  t.same(exit, { code: 0, signal: null }, 'exit code 0')
  t.ok(tookMs < EXIT_DEADLINE_MS, `exited within 10 s (${tookMs} ms)`)
  t.match(server.stdout(), /"msg":"stopped"/)

  const catchup = watcher.$client
    .prepare("SELECT * FROM influxdb_batch_runs WHERE trigger = 'catchup' ORDER BY id")
    .all() as BatchRunRow[]
  t.same(catchup.map((r) => r.processing_date), days, 'catch-up claimed the three dates, oldest first')
  t.equal((watcher.$client.prepare("SELECT count(*) AS n FROM influxdb_batch_runs WHERE status = 'running'").get() as { n: number }).n, 0, 'no run left running')

  for (const run of catchup) {
    const date = run.processing_date
    if (run.status === 'succeeded_with_warnings') {
      t.same(stableSummaries(watcher, date), expected.get(date), `${date} finished within the grace period, completely`)
    } else {
      t.equal(run.status, 'interrupted', `${date} was interrupted`)
      if (date === last) t.same(allRows(watcher, date), previous, `${date}: its previous summaries are untouched`)
      else t.same(stableSummaries(watcher, date), { client_daily_usage: [], client_user_daily_usage: [], client_model_daily_usage: [] }, `${date}: nothing written`)
    }
  }
  t.equal(catchup[2]!.status, 'interrupted', 'the day still queued at SIGTERM was not started')
})
