// `usage-batch archive restore --date D`, end to end through the CLI: an archived and purged day
// comes back from its file, and `run --date D` then reproduces the day's summaries exactly.
import t from 'tap'
import pino from 'pino'
import { join } from 'node:path'
import { runCli } from '../support/cli.js'
import { runRetention } from '../../src/lifecycle/retention.js'
import { buildTestApp, postEvents, runBatch, summaryRows } from '../helper.js'
import { dayEvents, rawCount } from '../lifecycle/fixtures.js'
import { LOOPBACK_ONLY_ENV } from '../support/children.js'

const DAY = '2026-11-10'
const NOW = Date.parse('2026-11-28T12:00:00Z')
const TABLES = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']

const cli = (args: string[], env: Record<string, string>) => runCli(args, env, NOW)

t.test('archive restore brings a purged day back, and a rerun reproduces its summaries', async (t) => {
  const h = await buildTestApp(t, { nowMs: NOW })
  const archiveDir = join(t.testdirName, 'archives')
  t.equal((await postEvents(h.app, dayEvents(DAY, 30))).statusCode, 200)
  h.clock.advance(1_000)
  await runBatch(h.app, { date: DAY })
  const summaries = TABLES.map((tb) => summaryRows(h.db, tb, DAY))
  h.clock.advance(1_000)
  const report = await runRetention({
    store: h.store,
    clock: h.clock,
    log: pino({ level: 'silent' }),
    timeZone: 'Europe/Warsaw',
    retentionDays: 3,
    influxdbFirst: false,
    archiveDir,
  })
  t.ok(report, 'retention ran')
  t.equal(rawCount(h.db, DAY), 0, 'the day was archived and purged')

  const env = { SQLITE_PATH: h.dbPath, RAW_ARCHIVE_DIR: archiveDir, BATCH_SCHEDULER_ENABLED: 'false' }
  const restored = await cli(['archive', 'restore', '--date', DAY], env)
  t.equal(restored.code, 0, restored.err)
  t.match(restored.out, /restored 2026-11-10 .*30 rows, 30 inserted, 0 already present/)
  t.equal(rawCount(h.db, DAY), 30)
  const again = await cli(['archive', 'restore', '--date', DAY], env)
  t.match(again.out, /0 inserted, 30 already present/, 'idempotent')

  const rerun = await cli(['run', '--date', DAY], env)
  t.equal(rerun.code, 0, rerun.err)
  t.same(
    TABLES.map((tb) => summaryRows(h.db, tb, DAY).map(({ batch_run_id: _r, updated_at: _u, created_at: _c, ...rest }) => rest)),
    summaries.map((rows) => rows.map(({ batch_run_id: _r, updated_at: _u, created_at: _c, ...rest }) => rest)),
    'the same figures as before the purge',
  )

  t.equal((await cli(['archive', 'restore'], env)).code, 2, 'a date is required')
  t.equal((await cli(['archive', 'list'], env)).code, 2)
  const unset = await cli(['archive', 'restore', '--date', DAY], { SQLITE_PATH: h.dbPath })
  t.equal(unset.code, 1)
  t.match(unset.err, /RAW_ARCHIVE_DIR/)
})
