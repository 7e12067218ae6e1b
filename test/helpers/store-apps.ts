// One HTTP suite, two stores: the production wiring (buildTestApp) on a SQLite file, and on a fresh
// database of the file's one PostgreSQL server (DATABASE_URL). A suite asks `storeKinds(t)` for the
// stores to run on and talks to each app's rows through the same few calls, so every case is the
// same on both.
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { dayWindow } from '../../src/clock.js'
import { rows as pgRows } from '../../src/db/postgres/sql.js'
import { GENERATION_KEY } from '../../src/db/store.js'
import type { PostgresStore } from '../../src/db/postgres/store.js'
import type { Store } from '../../src/db/store.js'
import { buildTestApp, databaseDigest, type TestApp, type TestAppOptions } from './app.js'
import { createMigratedDatabase, postgresUnavailable, sharedPostgres } from './postgres.js'

export interface StoreApp extends Omit<TestApp, 'store' | 'db'> {
  store: Store
  /** Rows of a statement written with `?` placeholders, on the app's own database; integers as numbers. */
  query<R extends object = Record<string, unknown>>(sql: string, ...params: unknown[]): Promise<R[]>
  /** The first column of the first row. */
  value(sql: string, ...params: unknown[]): Promise<unknown>
  /** A digest of every stored row of every table: "nothing changed" means the same digest. */
  digest(): Promise<string>
  /** Raw records stored for the local day `date`. */
  rawCount(date: string): Promise<number>
}

export interface StoreKind {
  name: 'SQLite' | 'PostgreSQL'
  build(t: Test, options?: TestAppOptions): Promise<StoreApp>
}

const TZ = 'Europe/Warsaw'

/**
 * The write generation is a row of database_metadata on both engines: a cache token, not stored
 * data, so the digest leaves it out (databaseDigest does the same on SQLite).
 */
const PG_DIGEST_SKIPS: Record<string, string> = { database_metadata: `WHERE t.key <> '${GENERATION_KEY}'` }

/** SQLite always; PostgreSQL when a server can run here (REQUIRE_POSTGRES=1 makes its absence fail). */
export async function storeKinds(root: Test): Promise<StoreKind[]> {
  const sqlite: StoreKind = {
    name: 'SQLite',
    async build(t, options) {
      const h = await buildTestApp(t, options)
      const query = async <R extends object>(sql: string, ...params: unknown[]) => {
        const statement = h.db.$client.prepare(sql)
        if (statement.reader) return statement.all(...params) as R[]
        statement.run(...params)
        return []
      }
      return {
        ...h,
        query,
        value: async (sql, ...params) => h.db.$client.prepare(sql).pluck().get(...params),
        digest: async () => databaseDigest(h.db),
        rawCount: async (date) => countDay(query, date),
      }
    },
  }
  if (postgresUnavailable()) return [sqlite]
  const server = await sharedPostgres(root)
  const postgres: StoreKind = {
    name: 'PostgreSQL',
    async build(t, options = {}) {
      const url = await createMigratedDatabase(t, server)
      const h = await buildTestApp(t, { ...options, env: { ...options.env, DATABASE_URL: url } })
      const store: Store = h.store
      const pool = (store as unknown as PostgresStore).db.$client
      const query = async <R extends object>(sql: string, ...params: unknown[]) => pgRows<R>(pool, numbered(sql), params)
      return {
        ...h,
        store,
        query,
        value: async (sql, ...params) => {
          const [first] = await query<Record<string, unknown>>(sql, ...params)
          return first === undefined ? undefined : Object.values(first)[0]
        },
        async digest() {
          const hash = createHash('sha256')
          const tables = await query<{ name: string }>(
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
          )
          for (const { name } of tables) {
            hash.update(`\n#${name}\n`)
            for (const r of await query<{ row: string }>(`SELECT t::text AS row FROM "${name}" t ${PG_DIGEST_SKIPS[name] ?? ''} ORDER BY 1`)) hash.update(r.row)
          }
          return hash.digest('hex')
        },
        rawCount: async (date) => countDay(query, date),
      }
    },
  }
  return [sqlite, postgres]
}

/** `?` placeholders as PostgreSQL's `$1, $2…` (the suites' statements hold no `?` in literals). */
function numbered(sql: string): string {
  let n = 0
  return sql.replace(/\?/g, () => `$${++n}`)
}

async function countDay(query: StoreApp['query'], date: string): Promise<number> {
  const w = dayWindow(date, TZ)
  const [r] = await query<{ n: number }>('SELECT count(*) AS n FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?', w.startMs, w.endMs)
  return Number(r!.n)
}
