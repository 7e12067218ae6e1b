// Opening the PostgreSQL store (DATABASE_URL): a pool, then the migrations in drizzle/postgres,
// applied under an advisory lock so that replicas starting together apply them once, in turn.
import { join } from 'node:path'
import { drizzle, migrate, type NodePgDatabase } from './drizzle.js'
import pg from 'pg'
import { expectedMigrationCount, migrationsFolder } from '../migrations.js'
import { ADVISORY_LOCK_CLASS, ADVISORY_LOCKS } from './advisory-locks.js'
import * as schema from './schema.js'

export type PgDb = NodePgDatabase<typeof schema> & { $client: pg.Pool }

export interface OpenPostgresOptions {
  /** postgres://user:password@host:port/database (the DATABASE_URL). */
  url: string
  /** Apply pending migrations (default true). */
  migrate?: boolean
  /** Connections in the pool (default 10). Leader election and migrations use their own. */
  poolSize?: number
  /** Called with errors of idle pooled connections (a restarted server, a cut network). */
  onIdleError?: (error: Error) => void
}

const DEFAULT_POOL_SIZE = 10
const CONNECT_TIMEOUT_MS = 10_000
/** Names the service's sessions in pg_stat_activity. */
export const APPLICATION_NAME = 'usage-batch'
/** drizzle's defaults, written out because readiness and tests read the same table. */
const MIGRATIONS_SCHEMA = 'drizzle'
const MIGRATIONS_TABLE = '__drizzle_migrations'

export function postgresMigrationsFolder(): string {
  return join(migrationsFolder(), 'postgres')
}

export async function openPostgres(options: OpenPostgresOptions): Promise<PgDb> {
  // A bounded wait for a connection: with the server unreachable, a query fails (and readiness says
  // so) instead of waiting for ever. Keepalives notice a peer that vanished without a word.
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
  })
  // A pg client emits 'error' when its connection fails, and an 'error' event without a listener
  // crashes the process. The pool listens on idle clients only; this listener covers checked-out ones
  // (a transaction or a cursor awaiting between statements), whose pending query fails instead and
  // which the pool discards on release. Idle ones are discarded too; the next query opens a new one.
  pool.on('connect', (client) => client.on('error', () => {}))
  pool.on('error', (error) => options.onIdleError?.(error))
  try {
    if (options.migrate !== false) await migrateUnderLock(options.url)
    return drizzle({ client: pool, schema }) as PgDb
  } catch (e) {
    await pool.end()
    throw new Error(`cannot open PostgreSQL database at ${redactUrl(options.url)}: ${(e as Error).message}`, { cause: e })
  }
}

/**
 * Applies pending migrations on a connection of its own, holding the session advisory lock
 * (ADVISORY_LOCK_CLASS, migrations) meanwhile: a second replica waits for the first to finish, then
 * finds nothing left to apply. A process that dies mid-way releases the lock with its session, and
 * drizzle runs the pending migrations in one transaction, so nothing is left half-applied.
 */
async function migrateUnderLock(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: `${APPLICATION_NAME} migrations` })
  await client.connect()
  // A connection error while waiting rejects the pending query; the listener keeps it from also
  // being thrown as an unhandled 'error' event.
  client.on('error', () => {})
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS.migrations])
    try {
      await migrate(drizzle({ client }), {
        migrationsFolder: postgresMigrationsFolder(),
        migrationsSchema: MIGRATIONS_SCHEMA,
        migrationsTable: MIGRATIONS_TABLE,
      })
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS.migrations])
    }
  } finally {
    await client.end()
  }
}

/** True when every migration in drizzle/postgres is recorded as applied in this database. */
export async function postgresMigrationsApplied(db: PgDb): Promise<boolean> {
  const journal = `${MIGRATIONS_SCHEMA}.${MIGRATIONS_TABLE}`
  const exists = await db.$client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [journal])
  if (!exists.rows[0]?.present) return false
  const applied = await db.$client.query<{ n: string }>(`SELECT count(*) AS n FROM ${journal}`)
  return Number(applied.rows[0]!.n) >= expectedMigrationCount(postgresMigrationsFolder())
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparseable DATABASE_URL)'
  }
}
