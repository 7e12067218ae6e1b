// The CLI in process: arguments, exit codes, progress on stderr and the summary table on stdout.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../support/cli.js'
import { openSqliteStore } from '../../src/db/sqlite/store.js'
import { insertDay, prepareDatabase } from '../support/data.js'
import { LOOPBACK_ONLY_ENV } from '../support/children.js'

const NOW = Date.parse('2026-11-28T12:00:00Z')

const cli = (args: string[], env: Record<string, string>) => runCli(args, env, NOW)

t.test('bad arguments exit 2 with a usage message', async (t) => {
  const env = { SQLITE_PATH: join(t.testdir({}), 'u.db') }
  for (const args of [
    [],
    ['frobnicate'],
    ['run'],
    ['run', '--date', '2026-02-30'],
    ['run', '--date', '2026-11-20', '--from', '2026-11-01'],
    ['run', '--from', '2026-11-20'],
    ['run', '--from', '2026-11-20', '--to', '2026-11-10'],
    ['run', '--date', '2026-11-28'],
    ['run', '--date', '2026-11-20', '--verbose'],
    ['run', '2026-11-20'],
    ['status', 'now'],
  ]) {
    const r = await cli(args, env)
    t.equal(r.code, 2, `${args.join(' ') || '(nothing)'} → 2`)
    t.match(r.err, /usage: usage-batch/, 'with the usage text')
    t.equal(r.out, '', 'and nothing on stdout')
  }
  const future = await cli(['run', '--date', '2026-11-28'], env)
  t.match(future.err, /latest date that can be run is 2026-11-27/)
  t.notOk(existsSync(env.SQLITE_PATH), 'refused before opening the database')
  const help = await cli(['--help'], env)
  t.equal(help.code, 0)
  t.match(help.out, /run --from YYYY-MM-DD --to YYYY-MM-DD/)
})

t.test('configuration errors name the variable and exit 1', async (t) => {
  const r = await cli(['run', '--date', '2026-11-20'], { SQLITE_PATH: join(t.testdir({}), 'u.db'), BATCH_LOOKBACK_DAYS: 'two' })
  t.equal(r.code, 1)
  t.match(r.err, /BATCH_LOOKBACK_DAYS/)
  const cron = await cli(['status'], { BATCH_SCHEDULE_CRON: '0 13 * * * *' })
  t.equal(cron.code, 1)
  t.match(cron.err, /BATCH_SCHEDULE_CRON: must be a five-field cron expression/)
})

t.test('migrate, run a range, status', async (t) => {
  const env = { SQLITE_PATH: join(t.testdir({}), 'data', 'u.db') }
  const missing = await cli(['status'], env)
  t.equal(missing.code, 1)
  t.match(missing.err, /no database at .*SQLITE_PATH/)

  const migrated = await cli(['migrate'], env)
  t.equal(migrated.code, 0)
  t.ok(existsSync(env.SQLITE_PATH))
  prepareDatabase(env.SQLITE_PATH, (db) => insertDay(db, '2026-11-26', { clients: 2, users: 2, models: 2, perGroup: 3 }))

  const run = await cli(['run', '--from', '2026-11-25', '--to', '2026-11-27'], env)
  t.equal(run.code, 0, run.err)
  t.match(run.err, /\[1\/3\] 2026-11-25 succeeded_with_warnings run 1 0 records/)
  t.match(run.err, /\[2\/3\] 2026-11-26 succeeded_with_warnings run 2 24 records 2 clients/)
  t.match(run.err, /\[3\/3\] 2026-11-27 /)
  const lines = run.out.trimEnd().split('\n')
  t.equal(lines.length, 4, 'a header and one line per day')
  t.match(lines[0], /^date\s+run\s+trigger\s+status\s+records\s+clients\s+summaries\s+corrections\s+ms\s+note$/)
  t.match(lines[2], /^2026-11-26\s+2\s+cli\s+succeeded_with_warnings\s+24\s+2\s+14\s+0\s/)

  const store = openSqliteStore({ path: env.SQLITE_PATH, migrate: false })
  t.same((await store.runs.list({ limit: 10 })).map((r) => [r.processing_date, r.trigger]).reverse(), [
    ['2026-11-25', 'cli'],
    ['2026-11-26', 'cli'],
    ['2026-11-27', 'cli'],
  ])
  await store.close()

  const status = await cli(['status'], env)
  t.equal(status.code, 0)
  t.match(status.out, /next tick:\s+2026-11-29 13:00 Europe\/Warsaw \(2026-11-29T12:00:00.000Z\)/)
  t.match(status.out, /last success date: 2026-11-27/)
  t.match(status.out, /running \(0\):/)
  t.match(status.out, /2026-11-26\s+2\s+cli\s+succeeded_with_warnings/)
})

t.test('a failed day makes the exit code 1', async (t) => {
  const env = { SQLITE_PATH: join(t.testdir({}), 'u.db') }
  // Retention removed the raw records of the 20th: rerunning it would bill nothing, so the day fails.
  prepareDatabase(env.SQLITE_PATH, (db) => {
    db.$client
      .prepare("INSERT INTO raw_archives (usage_date, file_name, row_count, purged_at) VALUES ('2026-11-20', NULL, 2, '2026-11-28T00:00:00.000Z')")
      .run()
  })
  const r = await cli(['run', '--from', '2026-11-19', '--to', '2026-11-20'], env)
  t.equal(r.code, 1)
  t.match(r.out, /2026-11-19\s+1\s+cli\s+succeeded_with_warnings/)
  t.match(r.out, /2026-11-20\s+2\s+cli\s+failed\s.*removed by retention/)
})
