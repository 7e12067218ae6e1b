// The Store (../store.ts) over one SQLite file through better-sqlite3. Every repository wraps the
// synchronous functions of this folder: the work is done before the method returns, and the
// promise it answers is already settled (no per-row promises on the hot reads). Atomic operations
// are synchronous transactions on the one writer connection.
import type { Logger } from 'pino'
import type { Clock } from '../../clock.js'
import { alertsSent } from '../schema.js'
import { eq } from '../drizzle.js'
import type { RawEventRepository, Readiness, Store, StoreHealth } from '../store.js'
import { getArchive, isRawPurged, listArchives, markPurged, markRestored, recordArchive } from './archives.js'
import { isStoreFailure } from './errors.js'
import { databaseCreatedAt } from './metadata.js'
import { sqliteGeneration } from './generation.js'
import { migrationsApplied, openDb, type Db } from './open.js'
import { appendPricing, markupInForce, markupsInForce, pricingHistory } from './pricing.js'
import { getStoredUsdPlnRate, listRates, saveNbpRate, setManualRate } from './rates.js'
import { createSqliteRawEvents } from './raw-events.js'
import { createIngestWriter, WRITER_MIN_RECORDS } from './ingest-writer.js'
import * as runs from './runs.js'
import { asyncStaging, openDayStaging } from './staging.js'
import * as reads from './summary-reads.js'

export interface SqliteStoreOptions {
  /** SQLITE_PATH, or ':memory:'. */
  path: string
  /** Stamps the database's creation on its first open. */
  clock?: Clock
  /** Apply pending migrations (default true). */
  migrate?: boolean
  /** Serve from a read-only connection (nothing is written; the file must exist). */
  readonly?: boolean
  /** Health and readiness failures are logged here, with the driver's message. */
  log?: Logger
}

/** The SQLite store, with what only its own engine's code may use: the connection and the file. */
export interface SqliteStore extends Store {
  readonly engine: 'sqlite'
  /** The writer connection. The raw source reads through it when the database is in memory. */
  readonly db: Db
  readonly path: string
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const db = openDb({ path: options.path, clock: options.clock, migrate: options.migrate, readonly: options.readonly })
  return createSqliteStore(db, options.path, options.log)
}

/** The store over an open connection (tests that prepare a database by hand first). */
export function createSqliteStore(db: Db, path: string, log?: Logger): SqliteStore {
  const generation = sqliteGeneration(db.$client)
  const { rawEvents: ownRawEvents, voids, diskUsage } = createSqliteRawEvents(db, path, generation)
  // Large ingests are stored by the ingest writer, off the event loop; a file only (a memory
  // database has one connection), and only one this process may write.
  const writer = path !== ':memory:' && !db.$client.readonly ? createIngestWriter(path, log) : undefined
  const rawEvents: RawEventRepository = {
    ...ownRawEvents,
    ingest: (events, receivedAtMs) =>
      writer && events.length >= WRITER_MIN_RECORDS ? writer.ingest(events, receivedAtMs) : ownRawEvents.ingest(events, receivedAtMs),
  }
  const reportFailure = failureLogger(log)

  /**
   * Each write a summary read can see moves the generation in its own transaction (generation.ts);
   * IMMEDIATE, as the write and the bump read before they write.
   */
  function bumping<A extends unknown[], R>(write: (...args: A) => R): (...args: A) => Promise<R> {
    const inTransaction = db.$client.transaction((...args: A) => {
      const result = write(...args)
      generation.bump()
      return result
    })
    return async (...args) => inTransaction.immediate(...args)
  }

  function ready(): Readiness {
    try {
      return migrationsApplied(db) ? { ready: true } : { ready: false, reason: 'migrations not applied' }
    } catch (e) {
      reportFailure('readiness', e)
      return { ready: false, reason: failureText(e, 'the database did not answer') }
    }
  }

  /** SQLite accepts a write and the schema is current. Local and cheap: never cached. */
  function health(): StoreHealth {
    const started = performance.now()
    const client = db.$client
    let busyTimeoutMs: number | undefined
    let migrated = false
    try {
      busyTimeoutMs = client.pragma('busy_timeout', { simple: true }) as number
      migrated = migrationsApplied(db)
      if (!migrated) return { status: 'down', detail: { migrations_applied: false } }
      // No waiting on another process's write lock inside a probe: the busy timeout would block
      // the event loop. A lock held elsewhere still proves the file writable (handled below).
      client.pragma('busy_timeout = 0')
      // A write statement that changes nothing, rolled back. BEGIN IMMEDIATE alone is not enough:
      // SQLite grants it on a read-only connection; the write itself is refused (SQLITE_READONLY).
      client.exec('BEGIN IMMEDIATE; DELETE FROM __drizzle_migrations WHERE 0; ROLLBACK')
      return {
        status: 'up',
        detail: { writable: true, migrations_applied: true, latency_ms: Math.round((performance.now() - started) * 1000) / 1000 },
      }
    } catch (e) {
      if (client.open && client.inTransaction) client.exec('ROLLBACK')
      const code = (e as { code?: string }).code
      if (code?.startsWith('SQLITE_BUSY')) return { status: 'up', detail: { writable: true, busy: true, migrations_applied: migrated } }
      reportFailure('health', e)
      return { status: 'down', detail: { writable: false, migrations_applied: migrated, error: failureText(e, 'the database did not accept a write') } }
    } finally {
      if (busyTimeoutMs !== undefined && client.open) client.pragma(`busy_timeout = ${busyTimeoutMs}`)
    }
  }

  return {
    engine: 'sqlite',
    db,
    path,
    runs: {
      claim: async (input) => runs.claimRun(db, input),
      finish: async (id, outcome) => runs.finishRun(db, id, outcome),
      get: async (id) => runs.getRun(db, id),
      running: async () => runs.runningRuns(db),
      list: async (filter) => runs.listRuns(db, filter),
      heartbeat: async (id, at) => runs.touchHeartbeat(db, id, at),
      abandonDead: async (isOwnerAlive, finishedAt) => runs.abandonDeadRuns(db, isOwnerAlive, finishedAt),
      hasSuccessBeside: async (date, id, side) => runs.hasSuccessBeside(db, date, id, side),
      lastSuccessDate: async () => runs.lastSuccessDate(db),
      firstProcessingDate: async () => runs.firstProcessingDate(db),
      datesWithSuccess: async (dates) => runs.datesWithSuccess(db, dates),
      datesInProgress: async (dates, freshSince) => runs.datesInProgress(db, dates, freshSince),
      datesWithPlnMissing: async (dates) => runs.datesWithPlnMissing(db, dates),
      lastClosed: async (triggers) => runs.lastClosedRun(db, triggers),
      unresolvedFailures: async (from, to) => runs.unresolvedFailures(db, from, to),
      successStartTimes: async (date) => runs.successStartTimes(db, date),
      closedTotals: async (boundsMs, known) => runs.closedTotals(db, boundsMs, known),
    },
    summaries: {
      openDayStaging: async () => asyncStaging(openDayStaging(db, generation.bump)),
      clientDaily: async (client, from, to) => reads.clientDailyRows(db, client, from, to),
      clientsOverview: async (from, to) => reads.clientsOverview(db, from, to),
      clientModelSums: async (client, from, to) => reads.clientModelSums(db, client, from, to),
      clientUserSums: async (client, from, to) => reads.clientUserSums(db, client, from, to),
      distinctUsers: async (client, from, to) => reads.distinctUsers(db, client, from, to),
      dayCounts: async (table, client, from, to) => reads.dayCounts(db, table, client, from, to),
      plnMissingByDate: async (from, to) => reads.plnMissingByDate(db, from, to),
      dailyMarkupCosts: async (from, to) => reads.dailyMarkupCosts(db, from, to),
    },
    rates: {
      get: async (date) => getStoredUsdPlnRate(db, date),
      list: async (from, to) => listRates(db, from, to),
      saveNbp: bumping((rate) => saveNbpRate(db, rate)),
      setManual: bumping((input) => setManualRate(db, input)),
    },
    pricing: {
      history: async (client) => pricingHistory(db, client),
      append: bumping((entry) => appendPricing(db, entry)),
      inForce: async (client, date, defaultRate) => markupInForce(db, client, date, defaultRate),
      allInForce: async (date) => markupsInForce(db, date),
    },
    archives: {
      get: async (date) => getArchive(db, date),
      list: async () => listArchives(db),
      record: async (input) => recordArchive(db, input),
      markPurged: async (date, at) => markPurged(db, date, at),
      markRestored: async (date, at) => markRestored(db, date, at),
      isRawPurged: async (date) => isRawPurged(db, date),
    },
    alerts: {
      wasSent: async (key) => db.select({ id: alertsSent.id }).from(alertsSent).where(eq(alertsSent.alert_key, key)).get() !== undefined,
      async recordSent(alert) {
        db.insert(alertsSent).values(alert).onConflictDoNothing().run()
      },
    },
    metadata: {
      createdAt: async () => databaseCreatedAt(db),
    },
    voids,
    rawEvents,
    ready: async () => ready(),
    health: async () => health(),
    diskUsage: async () => diskUsage(),
    generation: async () => generation.read(),
    isStoreFailure,
    async close() {
      await writer?.close()
      if (db.$client.open) db.$client.close()
    },
  }
}

/**
 * What a health detail or a readiness reason may say of a failure: a fixed sentence and the
 * engine's error code, never the driver's message (the log has it).
 */
function failureText(error: unknown, sentence: string): string {
  const code = (error as { code?: unknown } | null)?.code
  return `${sentence}${typeof code === 'string' ? ` (${code})` : ''}; see the service log`
}

/** Logs a failure when it differs from the previous one, so a probe every few seconds logs an outage once. */
function failureLogger(log: Logger | undefined): (check: string, error: unknown) => void {
  let last: string | undefined
  return (check, error) => {
    const message = error instanceof Error ? error.message : String(error)
    if (message === last) return
    last = message
    log?.warn({ check, err: error }, 'the database failed a health check')
  }
}
