// The day staging of src/db/summaries.ts on a real SQLite file: what the batch relies on.
import t from 'tap'
import { join } from 'node:path'
import { openDb } from '../../src/db/open.js'
import { openDayStaging } from '../../src/db/summaries.js'
import { buildClientDay, type Group } from '../../src/batch/rows.js'

const DAY = '2026-11-20'
const inputs = { markupRate: '1.3', usdPln: null, dataSource: 'sqlite' as const }

function group(user: string, model: string, cost: bigint): Group {
  return { external_user: user, model, sums: { input_tokens: 1, output_tokens: 2, total_tokens: 3, total_requests: 1, raw_cost_nano_usd: cost } }
}

function rowsOf(db: ReturnType<typeof openDb>, table: string) {
  return db.$client.prepare(`SELECT * FROM ${table} WHERE usage_date = ? ORDER BY id`).all(DAY) as Array<Record<string, unknown>>
}

t.test('a client staged twice is refused, so it can never be counted twice', async (t) => {
  const db = openDb({ path: join(t.testdir(), 'usage.db') })
  t.teardown(() => db.$client.close())
  const staging = openDayStaging(db)
  t.teardown(() => staging.dispose())
  staging.add(buildClientDay('acme', [group('u', 'm', 10n)], inputs))
  t.throws(() => staging.add(buildClientDay('acme', [group('v', 'm', 5n)], inputs)), /staged twice/, 'second staging of acme refused')
  const result = staging.commit({ date: DAY, runId: 1, now: '2026-11-28T12:00:00.000Z' })
  t.same(result, { inserted: 3, updated: 0, deleted: 0, unchanged: 0, rows: 3 }, 'only the first staging is written')
  t.equal(rowsOf(db, 'client_daily_usage').length, 1)
  t.equal(rowsOf(db, 'client_user_daily_usage')[0]!.external_user, 'u')
})

t.test('commit replaces the day: unchanged rows untouched, changed updated, vanished deleted, failed clients kept', async (t) => {
  const db = openDb({ path: join(t.testdir(), 'usage.db') })
  t.teardown(() => db.$client.close())
  const first = openDayStaging(db)
  first.add(buildClientDay('acme', [group('u', 'm', 10n), group('v', 'm', 20n)], inputs))
  first.add(buildClientDay('beta', [group('u', 'm', 30n)], inputs))
  first.add(buildClientDay('gone', [group('u', 'm', 40n)], inputs))
  t.same(first.commit({ date: DAY, runId: 1, now: 'T1' }), { inserted: 10, updated: 0, deleted: 0, unchanged: 0, rows: 10 })
  const before = rowsOf(db, 'client_user_daily_usage')

  const second = openDayStaging(db)
  // acme: u unchanged, v changed; its model and client rows change with v. beta failed this time;
  // gone has no records any more.
  second.add(buildClientDay('acme', [group('u', 'm', 10n), group('v', 'm', 21n)], inputs))
  const result = second.commit({ date: DAY, runId: 2, now: 'T2', failedClients: new Set(['beta']) })
  t.same(result, { inserted: 0, updated: 3, deleted: 3, unchanged: 1, rows: 4 })
  const after = rowsOf(db, 'client_user_daily_usage')
  const u = (rows: typeof after, client: string, user: string) => rows.find((r) => r.client_org_id === client && r.external_user === user)
  t.same(u(after, 'acme', 'u'), u(before, 'acme', 'u'), 'an unchanged row is left as it was (run id, timestamps)')
  t.equal(u(after, 'acme', 'v')!.raw_cost_nano_usd, 21)
  t.equal(u(after, 'acme', 'v')!.batch_run_id, 2)
  t.equal(u(after, 'acme', 'v')!.updated_at, 'T2')
  t.equal(u(after, 'acme', 'v')!.created_at, 'T1')
  t.same(u(after, 'beta', 'u'), u(before, 'beta', 'u'), 'a failed client keeps its rows')
  t.notOk(u(after, 'gone', 'u'), 'a client without records loses its rows')
  t.notOk(rowsOf(db, 'client_daily_usage').some((r) => r.client_org_id === 'gone'))
  t.equal(
    db.$client.prepare("SELECT count(*) FROM temp.sqlite_master WHERE name LIKE '%_stage_%'").pluck().get(),
    0,
    'the staging tables are dropped after a commit',
  )
})

t.test('amounts past 2^53 are stored exactly; one past int64 fails its client only, staging nothing of it', async (t) => {
  const db = openDb({ path: join(t.testdir(), 'usage.db') })
  t.teardown(() => db.$client.close())
  const staging = openDayStaging(db)
  t.teardown(() => staging.dispose())
  // 2^53 + 1 nano-USD raw: a double would store 2^53.
  const big = 2n ** 53n + 1n
  staging.add(buildClientDay('big', [group('u', 'm', big)], { ...inputs, markupRate: '1' }))
  // 2^62 nano-USD at markup 4: the user row's markup is 2^64, past int64. The client is refused whole.
  t.throws(
    () => staging.add(buildClientDay('huge', [group('u', 'm', 1n), group('v', 'm', 2n ** 62n)], { ...inputs, markupRate: '4' })),
    { name: 'MoneyRangeError', message: /markup_cost_nano_usd of 18446744073709551616 nano-units/ },
  )
  t.equal(staging.clients, 1, 'only the client that fit is staged')
  const result = staging.commit({ date: DAY, runId: 1, now: 'T1' })
  t.same(result, { inserted: 3, updated: 0, deleted: 0, unchanged: 0, rows: 3 }, "nothing of the refused client's rows was staged")
  const exact = db.$client.prepare('SELECT raw_cost_nano_usd, markup_cost_nano_usd FROM client_daily_usage WHERE usage_date = ?').safeIntegers(true).get(DAY)
  t.same(exact, { raw_cost_nano_usd: big, markup_cost_nano_usd: big }, 'stored to the nano-unit')
})

t.test("discard drops a staged client's rows, so the commit keeps its stored rows", async (t) => {
  const db = openDb({ path: join(t.testdir(), 'usage.db') })
  t.teardown(() => db.$client.close())
  const first = openDayStaging(db)
  first.add(buildClientDay('acme', [group('u', 'm', 10n)], inputs))
  first.add(buildClientDay('beta', [group('u', 'm', 30n)], inputs))
  first.commit({ date: DAY, runId: 1, now: 'T1' })
  const before = rowsOf(db, 'client_user_daily_usage')

  const second = openDayStaging(db)
  second.add(buildClientDay('acme', [group('u', 'm', 11n)], inputs))
  second.add(buildClientDay('beta', [group('u', 'm', 31n)], inputs))
  second.discard('beta')
  second.discard('nobody')
  t.equal(second.clients, 1)
  const result = second.commit({ date: DAY, runId: 2, now: 'T2', failedClients: new Set(['beta']) })
  t.same(result, { inserted: 0, updated: 3, deleted: 0, unchanged: 0, rows: 3 }, 'acme changed; beta neither staged nor deleted')
  const after = rowsOf(db, 'client_user_daily_usage')
  t.same(after.find((r) => r.client_org_id === 'beta'), before.find((r) => r.client_org_id === 'beta'), 'beta keeps its previous row')
  t.equal(after.find((r) => r.client_org_id === 'acme')!.raw_cost_nano_usd, 11)
})
