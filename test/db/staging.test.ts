// The day staging of the store (store.summaries.openDayStaging) on a real SQLite file: what the batch relies on.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import type { Db } from '../../src/db/sqlite/open.js'
import { openSqliteStore, type SqliteStore } from '../../src/db/sqlite/store.js'
import { buildClientDay, type Group } from '../../src/batch/rows.js'

const DAY = '2026-11-20'
const inputs = { markupRate: '1.3', usdPln: null, dataSource: 'sqlite' as const }

function group(user: string, model: string, cost: bigint): Group {
  return { external_user: user, model, sums: { input_tokens: 1, output_tokens: 2, total_tokens: 3, total_requests: 1, raw_cost_nano_usd: cost } }
}

function rowsOf(db: Db, table: string) {
  return db.$client.prepare(`SELECT * FROM ${table} WHERE usage_date = ? ORDER BY id`).all(DAY) as Array<Record<string, unknown>>
}

/** A running run of DAY to commit under (a commit needs its run running): the previous one is closed first. */
async function claimRun(store: SqliteStore): Promise<number> {
  for (const r of await store.runs.running()) await store.runs.finish(r.id, { status: 'succeeded', finished_at: 'T', duration_ms: 1 })
  const { run } = await store.runs.claim({ date: DAY, trigger: 'cli', dataSource: 'sqlite', startedAt: 'T0', owner: 'test@staging' })
  return run.id
}

function openStore(t: Test): SqliteStore {
  const store = openSqliteStore({ path: join(t.testdir(), 'usage.db') })
  t.teardown(() => store.close())
  return store
}

t.test('a client staged twice is refused, so it can never be counted twice', async (t) => {
  const store = openStore(t)
  const { db } = store
  const staging = await store.summaries.openDayStaging()
  t.teardown(() => staging.dispose())
  await staging.add(buildClientDay('acme', [group('u', 'm', 10n)], inputs))
  const twice = staging.add(buildClientDay('acme', [group('v', 'm', 5n)], inputs))
  await t.rejects(twice, /staged twice/, 'second staging of acme refused')
  t.notOk(store.isStoreFailure(await twice.catch((e: unknown) => e)), "the client's own fault, not the store's")
  const result = await staging.commit({ date: DAY, runId: await claimRun(store), now: '2026-11-28T12:00:00.000Z' })
  t.same(result, { inserted: 3, updated: 0, deleted: 0, unchanged: 0, rows: 3 }, 'only the first staging is written')
  t.equal(rowsOf(db, 'client_daily_usage').length, 1)
  t.equal(rowsOf(db, 'client_user_daily_usage')[0]!.external_user, 'u')
})

t.test('commit replaces the day: unchanged rows untouched, changed updated, vanished deleted, failed clients kept', async (t) => {
  const store = openStore(t)
  const { db } = store
  const first = await store.summaries.openDayStaging()
  await first.add(buildClientDay('acme', [group('u', 'm', 10n), group('v', 'm', 20n)], inputs))
  await first.add(buildClientDay('beta', [group('u', 'm', 30n)], inputs))
  await first.add(buildClientDay('gone', [group('u', 'm', 40n)], inputs))
  t.same(await first.commit({ date: DAY, runId: await claimRun(store), now: 'T1' }), { inserted: 10, updated: 0, deleted: 0, unchanged: 0, rows: 10 })
  const before = rowsOf(db, 'client_user_daily_usage')

  const second = await store.summaries.openDayStaging()
  // acme: u unchanged, v changed; its model and client rows change with v. beta failed this time;
  // gone has no records any more.
  await second.add(buildClientDay('acme', [group('u', 'm', 10n), group('v', 'm', 21n)], inputs))
  const result = await second.commit({ date: DAY, runId: await claimRun(store), now: 'T2', failedClients: new Set(['beta']) })
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
  const store = openStore(t)
  const { db } = store
  const staging = await store.summaries.openDayStaging()
  t.teardown(() => staging.dispose())
  // 2^53 + 1 nano-USD raw: a double would store 2^53.
  const big = 2n ** 53n + 1n
  await staging.add(buildClientDay('big', [group('u', 'm', big)], { ...inputs, markupRate: '1' }))
  // 2^62 nano-USD at markup 4: the user row's markup is 2^64, past int64. The client is refused whole.
  const refused = staging.add(buildClientDay('huge', [group('u', 'm', 1n), group('v', 'm', 2n ** 62n)], { ...inputs, markupRate: '4' }))
  await t.rejects(refused, { name: 'MoneyRangeError', message: /markup_cost_nano_usd of 18446744073709551616 nano-units/ })
  t.notOk(store.isStoreFailure(await refused.catch((e: unknown) => e)), "the client's own fault, not the store's")
  t.equal(staging.clients, 1, 'only the client that fit is staged')
  const result = await staging.commit({ date: DAY, runId: await claimRun(store), now: 'T1' })
  t.same(result, { inserted: 3, updated: 0, deleted: 0, unchanged: 0, rows: 3 }, "nothing of the refused client's rows was staged")
  const exact = db.$client.prepare('SELECT raw_cost_nano_usd, markup_cost_nano_usd FROM client_daily_usage WHERE usage_date = ?').safeIntegers(true).get(DAY)
  t.same(exact, { raw_cost_nano_usd: big, markup_cost_nano_usd: big }, 'stored to the nano-unit')
})

t.test("discard drops a staged client's rows, so the commit keeps its stored rows", async (t) => {
  const store = openStore(t)
  const { db } = store
  const first = await store.summaries.openDayStaging()
  await first.add(buildClientDay('acme', [group('u', 'm', 10n)], inputs))
  await first.add(buildClientDay('beta', [group('u', 'm', 30n)], inputs))
  await first.commit({ date: DAY, runId: await claimRun(store), now: 'T1' })
  const before = rowsOf(db, 'client_user_daily_usage')

  const second = await store.summaries.openDayStaging()
  await second.add(buildClientDay('acme', [group('u', 'm', 11n)], inputs))
  await second.add(buildClientDay('beta', [group('u', 'm', 31n)], inputs))
  await second.discard('beta')
  await second.discard('nobody')
  t.equal(second.clients, 1)
  const result = await second.commit({ date: DAY, runId: await claimRun(store), now: 'T2', failedClients: new Set(['beta']) })
  t.same(result, { inserted: 0, updated: 3, deleted: 0, unchanged: 0, rows: 3 }, 'acme changed; beta neither staged nor deleted')
  const after = rowsOf(db, 'client_user_daily_usage')
  t.same(after.find((r) => r.client_org_id === 'beta'), before.find((r) => r.client_org_id === 'beta'), 'beta keeps its previous row')
  t.equal(after.find((r) => r.client_org_id === 'acme')!.raw_cost_nano_usd, 11)
})

t.test('a commit under a run that is not running writes nothing', async (t) => {
  const store = openStore(t)
  const runId = await claimRun(store)
  await store.runs.abandonDead(() => false, 'T1')
  const staging = await store.summaries.openDayStaging()
  t.teardown(() => staging.dispose())
  await staging.add(buildClientDay('acme', [group('u', 'm', 10n)], inputs))
  await t.rejects(staging.commit({ date: DAY, runId, now: 'T2' }), { name: 'RunNotRunningError', message: /abandoned/ })
  await t.rejects(
    (await store.summaries.openDayStaging()).commit({ date: DAY, runId: 999, now: 'T2' }),
    { name: 'RunNotRunningError', message: /not in the ledger/ },
  )
  t.equal(rowsOf(store.db, 'client_daily_usage').length, 0)
})
