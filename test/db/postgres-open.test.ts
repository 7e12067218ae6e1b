// Opening the PostgreSQL store against a real server: migrations applied once under the advisory
// lock even when replicas start together, the single-flight index, exact money, bytewise order.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { sql } from 'drizzle-orm'
import { ADVISORY_LOCK_CLASS, ADVISORY_LOCKS } from '../../src/db/postgres/advisory-locks.js'
import { openPostgres, postgresMigrationsApplied, postgresMigrationsFolder, type PgDb } from '../../src/db/postgres/open.js'
import { clientDailyUsage, clientPricing, influxdbBatchRuns, usageEvents } from '../../src/db/postgres/schema.js'
import { createDatabase, createMigratedDatabase, postgresUnavailable, sharedPostgres } from '../helpers/postgres.js'

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
  const server = await sharedPostgres(t)
  const journal = JSON.parse(readFileSync(join(postgresMigrationsFolder(), 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }

  async function open(t: Test, url: string): Promise<PgDb> {
    const db = await openPostgres({ url })
    t.teardown(() => db.$client.end())
    return db
  }

  async function query<R extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return (await client.query<R>(text, params)).rows
    } finally {
      await client.end()
    }
  }

  t.test('a fresh database is migrated at open; readiness sees it', async (t) => {
    const url = await createDatabase(t, server)
    const bare = await openPostgres({ url, migrate: false })
    t.teardown(() => bare.$client.end())
    t.equal(await postgresMigrationsApplied(bare), false, 'nothing applied before the first open')
    const db = await open(t, url)
    t.equal(await postgresMigrationsApplied(db), true)
    const tables = await query<{ table_name: string }>(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
    t.strictSame(
      tables.map((r) => r.table_name),
      ['alerts_sent', 'client_daily_usage', 'client_model_daily_usage', 'client_pricing', 'client_user_daily_usage', 'daily_exchange_rates', 'database_metadata', 'influxdb_batch_runs', 'raw_archives', 'usage_event_voids', 'usage_events'],
    )
  })

  t.test('three replicas opening a fresh database at once: all succeed, migrations applied once, in turn', async (t) => {
    const url = await createDatabase(t, server)
    // Hold the migrations lock first, so that the three openers are seen waiting on it.
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    t.teardown(() => holder.end())
    await holder.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS.migrations])
    const openers = [0, 1, 2].map(() => openPostgres({ url }))
    const waiting = async () =>
      Number(
        (
          await query<{ n: string }>(
            url,
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND NOT granted",
            [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS.migrations],
          )
        )[0]!.n,
      )
    const deadline = Date.now() + 20_000
    while ((await waiting()) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    t.equal(await waiting(), 3, 'the three openers wait for the migrations lock')
    await holder.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS.migrations])
    const dbs = await Promise.all(openers)
    t.teardown(() => Promise.all(dbs.map((db) => db.$client.end())))
    for (const db of dbs) t.equal(await postgresMigrationsApplied(db), true)
    const applied = await query<{ hash: string }>(url, 'SELECT hash FROM drizzle.__drizzle_migrations')
    t.ok(journal.entries.length > 0)
    t.equal(applied.length, journal.entries.length, 'each migration recorded once')
    t.equal(new Set(applied.map((r) => r.hash)).size, applied.length)
    t.equal(await waiting(), 0, 'nobody is left waiting')
    const held = await query(url, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1", [ADVISORY_LOCK_CLASS])
    t.strictSame(held, [], 'the lock was released')
  })

  t.test('three replicas racing without a holder: all succeed, migrations applied once', async (t) => {
    const url = await createDatabase(t, server)
    const dbs = await Promise.all([0, 1, 2].map(() => openPostgres({ url })))
    t.teardown(() => Promise.all(dbs.map((db) => db.$client.end())))
    const applied = await query(url, 'SELECT hash FROM drizzle.__drizzle_migrations')
    t.equal(applied.length, journal.entries.length)
  })

  t.test('single-flight: one running run per date, enforced by the partial unique index', async (t) => {
    const db = await open(t, await createMigratedDatabase(t, server))
    const run = (date: string, status: 'running' | 'succeeded') => ({
      processing_date: date,
      trigger: 'api' as const,
      status,
      started_at: '2026-11-28T12:00:00.000Z',
      data_source: 'sqlite' as const,
    })
    const claim = (date: string) =>
      db
        .insert(influxdbBatchRuns)
        .values(run(date, 'running'))
        .onConflictDoNothing({ target: influxdbBatchRuns.processing_date, where: sql`status = 'running'` })
        .returning({ id: influxdbBatchRuns.id })
    const first = await claim('2026-11-27')
    t.equal(first.length, 1, 'the first claim opens a run')
    t.strictSame(await claim('2026-11-27'), [], 'a second claim of the same date gets nothing')
    t.equal((await claim('2026-11-26')).length, 1, 'another date runs beside it')
    await db.insert(influxdbBatchRuns).values([run('2026-11-27', 'succeeded'), run('2026-11-27', 'succeeded')])
    await t.rejects(db.insert(influxdbBatchRuns).values(run('2026-11-27', 'running')), { cause: { code: '23505' } }, 'a plain insert violates the index')
    const [row] = await db.select().from(influxdbBatchRuns).limit(1)
    t.strictSame(
      { warnings: row!.warnings, client_errors: row!.client_errors, records_processed: row!.records_processed },
      { warnings: '[]', client_errors: '[]', records_processed: 0 },
      'defaults as in SQLite',
    )
  })

  t.test('money is exact at the edges of BIGINT; integers above 2^31 fit', async (t) => {
    const db = await open(t, await createMigratedDatabase(t, server))
    const costs = [2n ** 63n - 1n, 2n ** 53n + 1n, 1n, 0n]
    await db.insert(usageEvents).values(
      costs.map((cost, i) => ({
        request_id: `r${i}`,
        client_org_id: 'acme',
        model: 'm',
        external_user: 'u',
        input_tokens: 1_000_000_000_000,
        output_tokens: 0,
        total_tokens: 1_000_000_000_000,
        cost_nano_usd: cost,
        occurred_at: Date.UTC(2026, 10, 27),
        received_at: Date.UTC(2026, 10, 27),
      })),
    )
    const rows = await db.select({ id: usageEvents.request_id, cost: usageEvents.cost_nano_usd, tokens: usageEvents.input_tokens }).from(usageEvents).orderBy(usageEvents.request_id)
    t.strictSame(
      rows.map((r) => [r.id, typeof r.cost, r.cost.toString(), r.tokens]),
      costs.map((c, i) => [`r${i}`, 'bigint', c.toString(), 1_000_000_000_000]),
    )
  })

  t.test('text orders bytewise, as SQLite does, even in a database whose default collation does not', async (t) => {
    // An ICU en-US database: its default order compares letters before case ('a' < 'b' < 'B').
    const name = `icu_${process.pid}`
    await server.admin(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`)
    t.teardown(() => server.admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    const db = await open(t, server.urlFor(name))
    const ids = ['b', 'B', '_x', 'a', 'A', 'é', 'z']
    const now = '2026-11-28T12:00:00.000Z'
    await db.insert(clientDailyUsage).values(
      ids.map((id) => ({
        client_org_id: id,
        usage_date: '2026-11-27',
        total_tokens: 1,
        input_tokens: 1,
        output_tokens: 0,
        total_requests: 1,
        raw_cost_nano_usd: 1n,
        markup_cost_nano_usd: 1n,
        markup_rate: '1.3',
        data_source: 'sqlite' as const,
        batch_run_id: 1,
        created_at: now,
        updated_at: now,
        primary_model: 'm',
        unique_users: 1,
      })),
    )
    const ordered = await db.select({ id: clientDailyUsage.client_org_id }).from(clientDailyUsage).orderBy(clientDailyUsage.client_org_id)
    const bytewise = [...ids].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    t.strictSame(
      ordered.map((r) => r.id),
      bytewise,
      'bytewise order',
    )
    const plain = await query<{ x: string }>(server.urlFor(name), `SELECT x FROM (VALUES ('a'), ('B'), ('b')) AS v(x) ORDER BY x`)
    t.strictSame(
      plain.map((r) => r.x),
      ['a', 'b', 'B'],
      'while the database default sorts otherwise (bytewise: B, a, b)',
    )
  })

  t.test('a connection lost inside a transaction fails that transaction, not the process', async (t) => {
    const url = await createMigratedDatabase(t, server)
    const db = await open(t, url)
    const database = decodeURIComponent(new URL(url).pathname.slice(1))
    const price = (from: string) => ({ client_org_id: 'acme', effective_from: from, markup_rate: '1.3', created_at: '2026-11-28T12:00:00.000Z' })
    await t.rejects(
      db.transaction(async (tx) => {
        await tx.insert(clientPricing).values(price('2026-11-01'))
        await server.admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database])
        // The connection's error arrives while no query is pending: the case that crashed without a listener.
        await new Promise((resolve) => setTimeout(resolve, 200))
        await tx.insert(clientPricing).values(price('2026-12-01'))
      }),
    )
    t.strictSame(await db.select().from(clientPricing), [], 'nothing of it was committed')
    await db.insert(clientPricing).values(price('2026-11-01'))
    t.equal((await db.select().from(clientPricing)).length, 1, 'the pool carries on with a new connection')
  })

  t.test('an unreachable database: a clear error that does not show the password', async (t) => {
    const error = await openPostgres({ url: 'postgres://usage:s3cret-pass@127.0.0.1:1/usage' }).then(
      () => new Error('opened an unreachable database'),
      (e: unknown) => e as Error,
    )
    t.match(error.message, /cannot open PostgreSQL database at postgres:\/\/usage:\*\*\*@127\.0\.0\.1:1\/usage/)
    t.notMatch(error.message, /s3cret/)
  })
}
