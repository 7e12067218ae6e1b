// One single-flight mechanism for every entry point: the claim in SQLite. A CLI run and a server
// run of the same date at the same time produce one run.
import t from 'tap'
import { join } from 'node:path'
import pino from 'pino'
import { systemClock, yesterday } from '../../src/clock.js'
import { createBatchService } from '../../src/batch/service.js'
import { openDb } from '../../src/db/sqlite/open.js'
import { openSqliteStore } from '../../src/db/sqlite/store.js'
import type { BatchRunRow } from '../../src/db/store.js'
import { noRateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { startCli, startServer, waitFor } from '../support/children.js'
import { LARGE_DAY, insertDay, prepareDatabase } from '../support/data.js'

const TZ = 'Europe/Warsaw'

function runsOf(path: string, date: string): BatchRunRow[] {
  const db = openDb({ path, migrate: false })
  try {
    return db.$client.prepare('SELECT * FROM influxdb_batch_runs WHERE processing_date = ? ORDER BY id').all(date) as BatchRunRow[]
  } finally {
    db.$client.close()
  }
}

t.test('a CLI run and a server run of the same date: one run, both see it', async (t) => {
  const dbPath = join(t.testdir({}), 'usage.db')
  const day = yesterday(systemClock, TZ)
  prepareDatabase(dbPath, (db) => insertDay(db, day, LARGE_DAY))
  const server = await startServer(t, { SQLITE_PATH: dbPath, BATCH_SCHEDULER_ENABLED: 'false' })

  const cli = startCli(t, ['run', '--date', day], { SQLITE_PATH: dbPath })
  const running = await waitFor('the CLI run to be running', () => runsOf(dbPath, day).find((r) => r.status === 'running'))
  t.equal(running.trigger, 'cli')

  // The server is asked for the same date while the CLI process holds it.
  const response = await fetch(`${server.url}/batch/run?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ date: day }),
  })
  t.equal(response.status, 200)
  const body = (await response.json()) as { runs: Array<{ id: number; trigger: string; status: string }> }
  t.equal(body.runs.length, 1)
  t.equal(body.runs[0]!.id, running.id, 'the server answers with the CLI’s run')
  t.equal(body.runs[0]!.trigger, 'cli')
  t.equal(body.runs[0]!.status, 'succeeded_with_warnings', 'and waits for it to finish')

  const exit = await cli.exited
  if (exit.code !== 0) t.comment(cli.stderr())
  t.equal(exit.code, 0, 'the CLI exits 0')
  t.match(cli.stdout(), new RegExp(`${day}\\s+${running.id}\\s+cli\\s+succeeded_with_warnings\\s+${LARGE_DAY.clients * LARGE_DAY.users * LARGE_DAY.models * LARGE_DAY.perGroup}\\s`))
  t.equal(runsOf(dbPath, day).length, 1, 'exactly one run of the date')
})

t.test('two processes claiming the same date at the same instant: one claims, the other joins', async (t) => {
  const path = join(t.testdir({}), 'usage.db')
  prepareDatabase(path, (db) => insertDay(db, '2026-11-20', { clients: 2, users: 2, models: 2, perGroup: 2 }))
  // Two connections and two owners stand for two processes sharing the file.
  const services = ['111@host-a', '222@host-b'].map((owner) => {
    const store = openSqliteStore({ path })
    const source = createSqliteSource({ store, clock: systemClock })
    t.teardown(async () => {
      await source.close()
      await store.close()
    })
    return createBatchService({ store, source, rates: noRateProvider, clock: systemClock, log: pino({ level: 'silent' }), timeZone: TZ, defaultMarkupRate: '1.3', owner })
  })
  const [a, b] = (await Promise.all(services.map((s, i) => s.startMany(['2026-11-20'], i === 0 ? 'cli' : 'schedule')))).map((started) => started[0]!)
  t.same([a!.claimed, b!.claimed], [true, false])
  t.equal(b!.run.id, a!.run.id)
  const [doneA, doneB] = await Promise.all([a!.done, b!.done])
  t.equal(doneA.status, 'succeeded_with_warnings')
  t.same(doneB, doneA, 'the joining side sees the same closed run')
  t.equal(runsOf(path, '2026-11-20').length, 1)
})
