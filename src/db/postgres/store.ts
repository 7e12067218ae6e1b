// The Store (../store.ts) over PostgreSQL (DATABASE_URL): one pool per process, shared by every
// repository; the scheduler leader lock and the migrations lock on connections of their own.
// Several replicas may share the database: single-flight, the run ledger, the day replace and
// ingestion hold across them (docs/postgresql.md#the-replica-model).
import type { Logger } from 'pino'
import { hostname } from 'node:os'
import type { Clock } from '../../clock.js'
import { systemClock } from '../../clock.js'
import { GENERATION_KEY, type Readiness, type Store, type StoreDiskUsage, type StoreHealth } from '../store.js'
import { createSessionLock } from './advisory-locks.js'
import { isPostgresStoreFailure } from './errors.js'
import {
  createPostgresAlerts,
  createPostgresArchives,
  createPostgresMetadata,
  createPostgresPricing,
  createPostgresRates,
  recordPostgresDatabaseCreated,
} from './ledgers.js'
import { APPLICATION_NAME, openPostgres, postgresMigrationsApplied, redactUrl, type PgDb } from './open.js'
import { createPostgresRawEvents } from './raw-events.js'
import { createPostgresRuns } from './runs.js'
import { one } from './sql.js'
import { createPostgresSummaries } from './summary-reads.js'

export interface PostgresStoreOptions {
  /** DATABASE_URL: postgres://user:password@host:port/database. */
  url: string
  /** Stamps the database's creation on its first open. */
  clock?: Clock
  /** Apply pending migrations (default true), under the migrations advisory lock. */
  migrate?: boolean
  /** Connections in this process's pool (default 10). */
  poolSize?: number
  /** Health and readiness failures, and errors of idle connections, are logged here. */
  log?: Logger
}

/** The PostgreSQL store, with what only its own engine's code may use: the pool. */
export interface PostgresStore extends Store {
  readonly engine: 'postgresql'
  readonly db: PgDb
  readonly url: string
}

/** A health or readiness check that has not answered by then counts as down. */
const CHECK_TIMEOUT_MS = 5_000

export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const reportIdle = failureLogger(options.log, 'an idle database connection failed')
  const db = await openPostgres({ url: options.url, migrate: options.migrate, poolSize: options.poolSize, onIdleError: (e) => reportIdle('pool', e) })
  try {
    if (options.migrate !== false) await recordPostgresDatabaseCreated(db.$client, (options.clock ?? systemClock).now())
  } catch (e) {
    await db.$client.end()
    throw new Error(`cannot open PostgreSQL database at ${redactUrl(options.url)}: ${(e as Error).message}`, { cause: e })
  }
  return createPostgresStore(db, options.url, options.log)
}

/** The store over an open pool (tests that prepare a database by hand first). */
export function createPostgresStore(db: PgDb, url: string, log?: Logger): PostgresStore {
  const pool = db.$client
  const reportFailure = failureLogger(log, 'the database failed a health check')
  const { rawEvents, voids } = createPostgresRawEvents(pool)
  let closed = false

  async function ready(): Promise<Readiness> {
    try {
      const migrated = await withinTimeout(postgresMigrationsApplied(db))
      return migrated ? { ready: true } : { ready: false, reason: 'migrations not applied' }
    } catch (e) {
      reportFailure('readiness', e)
      return { ready: false, reason: failureText(e, 'the database did not answer') }
    }
  }

  /** The database answers, accepts a write (a standby or a read-only transaction refuses it) and is migrated. */
  async function health(): Promise<StoreHealth> {
    const started = performance.now()
    let migrated = false
    try {
      migrated = await withinTimeout(postgresMigrationsApplied(db))
      if (!migrated) return { status: 'down', detail: { migrations_applied: false } }
      await withinTimeout(
        (async () => {
          const client = await pool.connect()
          try {
            // A write statement that changes nothing, rolled back.
            await client.query('BEGIN; DELETE FROM database_metadata WHERE false; ROLLBACK')
            client.release()
          } catch (e) {
            client.release(e as Error)
            throw e
          }
        })(),
      )
      return {
        status: 'up',
        detail: { writable: true, migrations_applied: true, latency_ms: Math.round((performance.now() - started) * 1000) / 1000 },
      }
    } catch (e) {
      reportFailure('health', e)
      return { status: 'down', detail: { writable: false, migrations_applied: migrated, error: failureText(e, 'the database refused a write') } }
    }
  }

  /**
   * The SQLite-shaped report, filled with what PostgreSQL can say of this database
   * (docs/postgresql.md#storage-figures-get-batchstorage): the database's size, its block size and block count; WAL
   * and free space belong to the server and autovacuum, not to one database, and read 0.
   */
  async function diskUsage(): Promise<StoreDiskUsage> {
    const r = await one<{ bytes: number; block: string }>(pool, "SELECT pg_database_size(current_database()) AS bytes, current_setting('block_size') AS block")
    const pageSize = Number(r!.block)
    return {
      path: databaseLabel(url),
      file_bytes: Number(r!.bytes),
      wal_bytes: 0,
      page_size: pageSize,
      page_count: Math.ceil(Number(r!.bytes) / pageSize),
      freelist_count: 0,
      free_bytes: 0,
      auto_vacuum: 'incremental',
    }
  }

  return {
    engine: 'postgresql',
    db,
    url,
    runs: createPostgresRuns(pool),
    summaries: createPostgresSummaries(pool),
    rates: createPostgresRates(pool),
    pricing: createPostgresPricing(pool),
    archives: createPostgresArchives(pool),
    alerts: createPostgresAlerts(pool),
    metadata: createPostgresMetadata(pool),
    voids,
    rawEvents,
    ready,
    health,
    diskUsage,
    // One primary-key lookup per read request; the counter is shared by every replica on the database.
    generation: async () => (await one<{ value: string }>(pool, 'SELECT value FROM database_metadata WHERE key = $1', [GENERATION_KEY]))?.value ?? '0',
    isStoreFailure: isPostgresStoreFailure,
    schedulerLock: () => createSessionLock({ url, lock: 'schedulerLeader', applicationName: `${APPLICATION_NAME} leader ${process.pid}@${hostname()}` }),
    async close() {
      if (closed) return
      closed = true
      await pool.end()
    },
  }
}

/** Where the data lives, without credentials: host, port and database. */
function databaseLabel(url: string): string {
  try {
    const u = new URL(url)
    return `postgresql://${u.host}${u.pathname}`
  } catch {
    return 'postgresql'
  }
}

function withinTimeout<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })), CHECK_TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * What a health detail or a readiness reason may say of a failure: a fixed sentence and the
 * SQLSTATE or socket code, never the driver's message (the log has it).
 */
function failureText(error: unknown, sentence: string): string {
  const code = (error as { code?: unknown } | null)?.code
  return `${sentence}${typeof code === 'string' ? ` (${code})` : ''}; see the service log`
}

/** Logs a failure when it differs from the previous one, so a probe every few seconds logs an outage once. */
function failureLogger(log: Logger | undefined, message: string): (check: string, error: unknown) => void {
  let last: string | undefined
  return (check, error) => {
    const text = error instanceof Error ? error.message : String(error)
    if (text === last) return
    last = text
    log?.warn({ check, err: error }, message)
  }
}
