// What only a real PostgreSQL server shows of the PostgreSQL store, beyond the store contract
// (test/db/store-contract.test.ts): a server restarted in the middle of a day's staging, the
// database unreachable, and 64-bit integers converted per query without a global type parser.
import t from 'tap'
import pg from 'pg'
import { buildClientDay } from '../../src/batch/rows.js'
import { openPostgresStore } from '../../src/db/postgres/store.js'
import type { ClientDay } from '../../src/db/store.js'
import { createMigratedDatabase, postgresUnavailable, startPostgres } from '../helpers/postgres.js'
import { rawEvent } from '../helpers/events.js'

const DAY = '2026-11-20'
const T0 = '2026-11-21T13:00:00.000Z'

function day(client: string, cost: number): ClientDay {
  return buildClientDay(
    client,
    [{ external_user: 'u', model: 'm', sums: { input_tokens: 1, output_tokens: 1, total_tokens: 2, total_requests: 1, raw_cost_nano_usd: cost } }],
    { markupRate: '1.3', usdPln: null, dataSource: 'sqlite' },
  ) as ClientDay
}

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
  t.test('a server restarted mid-staging fails the day as a store failure; the store works again afterwards', async (t) => {
    const server = await startPostgres(t)
    const url = await createMigratedDatabase(t, server)
    const store = await openPostgresStore({ url })
    t.teardown(() => store.close())
    const { run } = await store.runs.claim({ date: DAY, trigger: 'api', dataSource: 'sqlite', startedAt: T0, owner: '1@a' })
    const staging = await store.summaries.openDayStaging()
    await staging.add(day('acme', 10))
    await server.stop()
    const lost = await staging.add(day('beta', 20)).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.ok(lost, 'staging on a lost connection rejects')
    t.equal(store.isStoreFailure(lost), true, `a store failure, not the client's (${(lost as Error).message})`)
    await staging.dispose()
    const down = await store.runs.get(run.id).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.equal(store.isStoreFailure(down), true, `the server down is a store failure (${(down as Error | undefined)?.message})`)
    t.equal((await store.ready()).ready, false)
    t.equal((await store.health()).status, 'down')
    await server.start()
    t.strictSame(await store.ready(), { ready: true }, 'the pool reconnects by itself')
    const again = await store.summaries.openDayStaging()
    await again.add(day('acme', 10))
    t.strictSame(await again.commit({ date: DAY, runId: run.id, now: T0 }), { inserted: 3, updated: 0, deleted: 0, unchanged: 0, rows: 3 })
    const { rows } = await store.db.$client.query("SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'stage_%' AND relpersistence = 't'")
    t.equal(rows[0].n, 0, 'no staging table left behind')
  })

  t.test('64-bit integers: exact per query; no global parser is installed', async (t) => {
    const server = await startPostgres(t)
    const url = await createMigratedDatabase(t, server)
    const store = await openPostgresStore({ url })
    t.teardown(() => store.close())
    t.equal(pg.types.getTypeParser(20, 'text')('9223372036854775807'), '9223372036854775807', 'pg still hands BIGINT over as text to everyone else')
    t.equal(pg.types.getTypeParser(1700, 'text')('1.50'), '1.50')
    const { run } = await store.runs.claim({ date: DAY, trigger: 'api', dataSource: 'sqlite', startedAt: T0, owner: '1@a' })
    t.equal(typeof run.id, 'number', 'ids are numbers in the rows the store answers')
  })

  t.test('concurrent ingests of the same request_ids in opposite orders: no deadlock, each record stored once', async (t) => {
    const server = await startPostgres(t)
    const url = await createMigratedDatabase(t, server)
    const store = await openPostgresStore({ url })
    t.teardown(() => store.close())
    const records = (round: number) =>
      Array.from({ length: 2_000 }, (_, i) => rawEvent({ request_id: `r${round}-${String(i).padStart(4, '0')}`, occurred_at_ms: Date.parse(T0) - i * 1000 }))
    // Two producers retrying the same records at once, one of them in reverse: without a fixed
    // order their inserts wait on each other's rows (PostgreSQL: deadlock detected, 40P01).
    let accepted = 0
    const rounds = 8
    for (let round = 0; round < rounds; round++) {
      const forward = records(round)
      const outcomes = await Promise.allSettled([store.rawEvents.ingest(forward, 1), store.rawEvents.ingest([...forward].reverse(), 1)])
      for (const o of outcomes) {
        if (o.status === 'rejected') t.fail(`round ${round}: ${(o.reason as Error).message}`)
        else accepted += o.value.accepted
      }
    }
    t.equal(accepted, rounds * 2_000, 'every record accepted once, the other copy a duplicate')
    const { rows } = await store.db.$client.query('SELECT count(*)::int AS n FROM usage_events')
    t.equal(rows[0].n, rounds * 2_000)
  })
}
