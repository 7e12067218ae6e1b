// The PostgreSQL raw store against a real server: the shared source contract, then what only a
// shared database shows (replicas ingesting the same events, reads cut mid-way, sums beyond 2^63).
import t, { type Test } from 'tap'
import pg from 'pg'
import { dayWindow, fixedClock } from '../../src/clock.js'
import { openPostgresStore } from '../../src/db/postgres/store.js'
import { createPostgresSource } from '../../src/sources/postgres.js'
import type { UsageEvent } from '../../src/usage-event.js'
import { createMigratedDatabase, postgresUnavailable, sharedPostgres, type PostgresServer } from '../helpers/postgres.js'
import { collect, legacyAsEvents, runSourceContract, TZ, type LegacyPoint } from '../helpers/source-contract.js'
import { rawEvent } from '../helpers/events.js'

async function store(t: Test, server: PostgresServer, options: { cursorRows?: number; poolSize?: number } = {}) {
  const url = await createMigratedDatabase(t, server)
  const pgStore = await openPostgresStore({ url, migrate: false, poolSize: options.poolSize })
  const end = () => pgStore.close()
  t.teardown(end)
  const source = createPostgresSource({ store: pgStore, clock: fixedClock(Date.UTC(2026, 10, 1)), cursorRows: options.cursorRows })
  return { url, db: pgStore.db, source, end }
}

/** The i-th of many records over 7 clients, 5 users and 3 models. */
function event(i: number, overrides: Partial<UsageEvent> = {}): UsageEvent {
  return rawEvent({
    request_id: `r${i}`,
    client_org_id: `client-${i % 7}`,
    external_user: `user-${i % 5}`,
    model: `model-${i % 3}`,
    output_tokens: 2,
    cost_nano_usd: 1_000n + BigInt(i),
    occurred_at_ms: Date.parse('2026-11-20T10:00:00Z') + i,
    ...overrides,
  })
}

async function openTransactions(server: PostgresServer, url: string): Promise<number> {
  const database = decodeURIComponent(new URL(url).pathname.slice(1))
  const { rows } = await server.admin("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", [database])
  return Number(rows[0].n)
}

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
  const server = await sharedPostgres(t)

  // Small cursor batches, so that the contract's days span several FETCH round trips.
  runSourceContract(t, async (t) => {
    const { source, url } = await store(t, server, { cursorRows: 7 })
    return {
      source,
      writeLegacy: async (points: LegacyPoint[]) => {
        await source.ingest(legacyAsEvents(points))
      },
      breakStore: async () => {
        const database = decodeURIComponent(new URL(url).pathname.slice(1))
        await server.admin(`DROP DATABASE ${pg.escapeIdentifier(database)} WITH (FORCE)`)
      },
    }
  })

  t.test('the day arrives client by client in bytewise id order, as from SQLite', async (t) => {
    const { source } = await store(t, server, { cursorRows: 3 })
    const ids = ['b', 'B', '_x', 'a', 'A', 'é']
    await source.ingest(ids.flatMap((client, c) => [0, 1, 2, 3].map((k) => event(c * 10 + k, { client_org_id: client }))))
    const seen: string[] = []
    for await (const client of source.aggregateClients!(dayWindow('2026-11-20', TZ))) {
      seen.push(client.client_org_id)
      if (!('rows' in client)) throw new Error(`${client.client_org_id}: ${client.error}`)
      t.equal(client.rows.reduce((n, r) => n + r.total_requests, 0), 4, `${client.client_org_id}: all its records`)
    }
    t.strictSame(seen, [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))))
  })

  t.test('sums beyond 2^63 nano-units stay exact', async (t) => {
    const { source } = await store(t, server)
    const big = 2n ** 62n + 7n
    await source.ingest([0, 1, 2].map((i) => event(i, { client_org_id: 'acme', external_user: 'u', model: 'm', cost_nano_usd: big })))
    const rows = await collect(source, '2026-11-20')
    t.equal(rows.length, 1)
    t.equal(rows[0]!.raw_cost_nano_usd, 3n * big, `${3n * big} (above 2^63 - 1 = ${2n ** 63n - 1n})`)
    for await (const client of source.aggregateClients!(dayWindow('2026-11-20', TZ))) {
      if (!('rows' in client)) throw new Error(`${client.client_org_id}: ${client.error}`)
      t.equal(client.rows[0]!.raw_cost_nano_usd, 3n * big, 'client by client too')
    }
  })

  t.test('an ingest request is all or nothing', async (t) => {
    const { source, db } = await store(t, server)
    // PostgreSQL refuses NUL in text (validation refuses it before, docs/api.md#ingest): the statement fails whole.
    await t.rejects(source.ingest([event(1), event(2, { external_user: 'bad\u0000user' }), event(3)]))
    const { rows } = await db.$client.query('SELECT count(*)::int AS n FROM usage_events')
    t.equal(rows[0].n, 0, 'nothing of the failed request was stored')
    t.strictSame(await source.ingest([]), { accepted: 0, duplicates: 0 })
  })

  t.test('two replicas ingesting the same events at once: each stored once, the rest counted as duplicates', async (t) => {
    const a = await store(t, server)
    const other = await openPostgresStore({ url: a.url, migrate: false })
    t.teardown(() => other.close())
    const b = createPostgresSource({ store: other, clock: fixedClock(Date.UTC(2026, 10, 2)) })
    const events = Array.from({ length: 2_000 }, (_, i) => event(i))
    const halves = [events.slice(0, 1_200), events.slice(800)]
    const results = await Promise.all([a.source.ingest(events), b.ingest(events), a.source.ingest(halves[0]!), b.ingest(halves[1]!)])
    const accepted = results.reduce((n, r) => n + r.accepted, 0)
    const duplicates = results.reduce((n, r) => n + r.duplicates, 0)
    t.equal(accepted, events.length, 'every event accepted exactly once across replicas')
    t.equal(accepted + duplicates, 2 * events.length + 1_200 + 1_200)
    const rows = await collect(a.source, '2026-11-20')
    t.equal(rows.reduce((n, r) => n + r.total_requests, 0), events.length)
    t.equal(
      rows.reduce((n, r) => n + BigInt(r.raw_cost_nano_usd), 0n),
      events.reduce((n, e) => n + e.cost_nano_usd, 0n),
    )
  })

  t.test('a streamed read: leaving early, or aborting, ends its transaction and frees its connection', async (t) => {
    const { source, url, db } = await store(t, server, { cursorRows: 10, poolSize: 2 })
    await source.ingest(Array.from({ length: 500 }, (_, i) => event(i, { external_user: `user-${i}` })))
    const window = dayWindow('2026-11-20', TZ)
    const iterator = source.aggregate(window)[Symbol.asyncIterator]()
    t.notOk((await iterator.next()).done)
    t.equal(await openTransactions(server, url), 1, 'the cursor holds a transaction while being read')
    await iterator.return!(undefined)
    t.equal(await openTransactions(server, url), 0, 'leaving early closed it')
    t.equal(db.$client.idleCount, db.$client.totalCount, 'the connection is back in the pool')

    const stop = new AbortController()
    let read = 0
    await t.rejects(
      (async () => {
        for await (const _ of source.aggregate(window, { signal: stop.signal })) {
          read += 1
          if (read === 15) stop.abort(new Error('grace period over'))
        }
      })(),
      /grace period over/,
    )
    t.ok(read < 500, `the read stopped at the next batch (${read} rows)`)
    t.equal(await openTransactions(server, url), 0)
    t.strictSame((await collect(source, '2026-11-20')).length, 500, 'the pool serves the next read')
  })

  t.test("a read whose connection is cut mid-way fails (never a short day), and the process and pool survive", async (t) => {
    const { source, url } = await store(t, server, { cursorRows: 10, poolSize: 1 })
    await source.ingest(Array.from({ length: 300 }, (_, i) => event(i, { external_user: `user-${i}` })))
    const database = decodeURIComponent(new URL(url).pathname.slice(1))
    let read = 0
    await t.rejects(
      (async () => {
        for await (const _ of source.aggregate(dayWindow('2026-11-20', TZ))) {
          read += 1
          if (read === 5) {
            await server.admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database])
          }
        }
      })(),
    )
    t.ok(read >= 5 && read < 300, `failed after ${read} rows`)
    t.equal((await collect(source, '2026-11-20')).length, 300, 'a new connection serves the next read')
    t.equal((await source.check()).status, 'up')
  })
}
