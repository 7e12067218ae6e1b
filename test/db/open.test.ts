import t from 'tap'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { migrationsApplied, openDb } from '../../src/db/sqlite/open.js'

t.test('opens in WAL mode with a busy timeout and applies every migration', async (t) => {
  const db = openDb({ path: join(t.testdir({}), 'nested', 'usage.db') })
  t.teardown(() => db.$client.close())
  t.equal(db.$client.pragma('journal_mode', { simple: true }), 'wal')
  t.ok((db.$client.pragma('busy_timeout', { simple: true }) as number) >= 1000)
  t.ok(migrationsApplied(db))
  const tables = db.$client.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()
  for (const name of [
    'usage_events',
    'client_daily_usage',
    'client_user_daily_usage',
    'client_model_daily_usage',
    'daily_exchange_rates',
    'influxdb_batch_runs',
    'client_pricing',
  ]) {
    t.ok(tables.includes(name), `table ${name}`)
  }
})

t.test('natural keys are UNIQUE: a second writer cannot double a row', async (t) => {
  const db = openDb({ path: ':memory:' })
  t.teardown(() => db.$client.close())
  const row = {
    client_org_id: 'c',
    usage_date: '2026-11-20',
    total_tokens: 1,
    input_tokens: 1,
    output_tokens: 0,
    total_requests: 1,
    raw_cost_nano_usd: 1,
    markup_cost_nano_usd: 1,
    markup_rate: '1.3',
    data_source: 'sqlite',
    batch_run_id: 1,
    created_at: 'x',
    updated_at: 'x',
    primary_model: 'm',
    unique_users: 1,
  }
  const cols = Object.keys(row)
  const insert = db.$client.prepare(`INSERT INTO client_daily_usage (${cols.join(',')}) VALUES (${cols.map((c) => '@' + c).join(',')})`)
  insert.run(row)
  t.throws(() => insert.run(row), /UNIQUE/)
  const user = db.$client.prepare(
    `INSERT INTO client_user_daily_usage (client_org_id, usage_date, external_user, model, total_tokens, input_tokens, output_tokens,
       total_requests, raw_cost_nano_usd, markup_cost_nano_usd, markup_rate, data_source, batch_run_id, created_at, updated_at)
     VALUES ('c', '2026-11-20', 'u', 'm', 1, 1, 0, 1, 1, 1, '1.3', 'sqlite', 1, 'x', 'x')`,
  )
  user.run()
  t.throws(() => user.run(), /UNIQUE/)
  const run = db.$client.prepare(
    "INSERT INTO influxdb_batch_runs (processing_date, trigger, status, started_at, data_source) VALUES ('2026-11-20', 'api', 'running', 'x', 'sqlite')",
  )
  run.run()
  t.throws(() => run.run(), /UNIQUE/, 'one running run per date')
  db.$client.prepare("UPDATE influxdb_batch_runs SET status = 'succeeded'").run()
  t.doesNotThrow(() => run.run(), 'finished runs do not block a new one')
})

t.test('a path that cannot hold a database fails with the path in the message', async (t) => {
  const dir = t.testdir({})
  writeFileSync(join(dir, 'file'), 'not a folder')
  t.throws(() => openDb({ path: join(dir, 'file', 'usage.db') }), /file/)
})
