// Raw retention in the embedded store. A local day's raw rows go only when the day is older than
// RAW_RETENTION_DAYS and a successful run of it started after its last record arrived: billing never
// loses a record that no summary holds. Deletion runs in bounded chunks with the event loop free
// between them, after the scheduled tick, never on a request.
import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { addDays, dayWindow, localDateOf, today, type Clock } from '../clock.js'
import { getArchive, markPurged, recordArchive } from '../db/archives.js'
import type { Db } from '../db/open.js'
import { archiveFileName, compareArchiveWithDb, inspectArchiveFile, writeDayArchive, type DaySelection } from './archive.js'

export interface RetentionDeps {
  db: Db
  /** The SQLite file (SQLITE_PATH); archives read through a second, read-only connection on it. */
  dbPath?: string
  clock: Clock
  log: Logger
  timeZone: string
  /** RAW_RETENTION_DAYS; 0 keeps everything. */
  retentionDays: number
  /** RAW_ARCHIVE_DIR; unset: rows are deleted without an archive. */
  archiveDir?: string
  /** InfluxDB-first: the bucket's retention policy rules and this is a no-op. */
  influxdbFirst: boolean
  /** Rows per delete transaction (default 5,000). */
  chunkRows?: number
  /** Pages per incremental_vacuum step (default 2,000). */
  vacuumPages?: number
  /** Between chunks; default setImmediate. Tests may count or slow the steps. */
  yieldToEventLoop?: () => Promise<void>
}

export type RetentionDayAction =
  /** Archived (when configured) and deleted. */
  | 'deleted'
  /** Old enough, but no successful run started after its last record arrived. */
  | 'kept_unsummarised'
  /** An archive exists that neither covers the rows nor is covered by them; needs a person. */
  | 'kept_archive_conflict'
  /** Writing or checking the archive failed (logged); tried again at the next pass. */
  | 'kept_archive_failed'

export interface RetentionDay {
  date: string
  rows: number
  action: RetentionDayAction
  archive?: string
}

export interface RetentionReport {
  mode: 'sqlite' | 'influxdb_first' | 'disabled'
  /** Days before this date are eligible (null when nothing is). */
  cutoffDate: string | null
  days: RetentionDay[]
  deletedRows: number
  /** Pages handed back to the OS by incremental vacuum. */
  freedPages: number
}

const DEFAULT_CHUNK_ROWS = 5_000
const DEFAULT_VACUUM_PAGES = 2_000
const SUCCESS = "('succeeded', 'succeeded_with_warnings')"

/** What /health can say about raw retention. */
export function retentionInfo(config: { influxdbFirst: boolean; RAW_RETENTION_DAYS: number; RAW_ARCHIVE_DIR?: string }) {
  if (config.influxdbFirst) {
    return { mode: 'influxdb_first' as const, managed_by: "the InfluxDB bucket's retention policy", raw_retention_days: null, archive_dir: null }
  }
  return {
    mode: 'sqlite' as const,
    managed_by: 'usage-batch retention pass',
    raw_retention_days: config.RAW_RETENTION_DAYS === 0 ? null : config.RAW_RETENTION_DAYS,
    archive_dir: config.RAW_ARCHIVE_DIR ?? null,
  }
}

/** The first date that is kept: everything before it is older than the retention window. */
export function retentionCutoff(clock: Clock, timeZone: string, retentionDays: number): string {
  return addDays(today(clock, timeZone), -retentionDays)
}

export interface DayEligibility {
  rows: number
  /** Latest received_at of the day's rows (epoch ms); null without rows. */
  maxReceivedAt: number | null
  /** started_at (epoch ms) of the day's latest successful run; null without one. */
  lastSuccessStartedAt: number | null
  eligible: boolean
}

/**
 * Whether a day's raw rows are all summarised by a successful run that started after the last of
 * them arrived, and after the last void of one of its records.
 */
export function dayEligibility(db: Db, date: string, startMs: number, endMs: number): DayEligibility {
  const stats = db.$client
    .prepare('SELECT count(*) AS n, max(received_at) AS maxReceived FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?')
    .get(startMs, endMs) as { n: number; maxReceived: number | null }
  // A void changes the day as much as an arrival does: the day's summaries must have been rerun since.
  const lastVoid = db.$client
    .prepare('SELECT max(voided_at) FROM usage_event_voids WHERE occurred_at >= ? AND occurred_at < ?')
    .pluck()
    .get(startMs, endMs) as number | null
  const lastChange = stats.maxReceived === null ? null : Math.max(stats.maxReceived, lastVoid ?? stats.maxReceived)
  const runs = db.$client
    .prepare(`SELECT started_at FROM influxdb_batch_runs WHERE processing_date = ? AND status IN ${SUCCESS}`)
    .pluck()
    .all(date) as string[]
  // Compared as instants, not as text, so a differently formatted timestamp cannot mislead.
  const started = runs.map((s) => Date.parse(s)).filter((n) => Number.isFinite(n))
  const lastSuccessStartedAt = started.length > 0 ? Math.max(...started) : null
  const eligible = lastChange !== null && lastSuccessStartedAt !== null && lastSuccessStartedAt > lastChange
  return { rows: stats.n, maxReceivedAt: stats.maxReceived, lastSuccessStartedAt, eligible }
}

/**
 * One retention pass. Wiring: call `runRetention(deps)` after each scheduled tick (after the day's
 * batch runs, so yesterday's success is in the ledger), awaited or in the background; it never throws
 * for one bad day, it logs and goes on.
 */
export async function runRetention(deps: RetentionDeps): Promise<RetentionReport> {
  if (deps.influxdbFirst) return { mode: 'influxdb_first', cutoffDate: null, days: [], deletedRows: 0, freedPages: 0 }
  if (deps.retentionDays === 0) return { mode: 'disabled', cutoffDate: null, days: [], deletedRows: 0, freedPages: 0 }
  const { db, timeZone } = deps
  const log = deps.log.child({ component: 'retention' })
  const yieldNow = deps.yieldToEventLoop ?? (() => new Promise<void>((resolve) => setImmediate(resolve)))
  const chunkRows = deps.chunkRows ?? DEFAULT_CHUNK_ROWS
  const cutoffDate = retentionCutoff(deps.clock, timeZone, deps.retentionDays)
  const cutoffMs = dayWindow(cutoffDate, timeZone).startMs
  const iso = () => new Date(deps.clock.now()).toISOString()

  const nextOldDay = db.$client.prepare('SELECT min(occurred_at) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?').pluck()
  const deleteChunk = db.$client.prepare(
    `DELETE FROM usage_events WHERE rowid IN (
       SELECT rowid FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? AND received_at <= ? LIMIT ?)`,
  )

  const reader = deps.archiveDir && deps.dbPath && deps.dbPath !== ':memory:' ? new Database(deps.dbPath, { readonly: true, fileMustExist: true }) : undefined
  reader?.pragma('busy_timeout = 5000')
  const days: RetentionDay[] = []
  let deletedRows = 0
  try {
    // Walk day by day from the oldest raw row, jumping over empty stretches.
    let from = Number.MIN_SAFE_INTEGER
    for (;;) {
      const oldest = nextOldDay.get(from, cutoffMs) as number | null
      if (oldest === null) break
      const date = localDateOf(oldest, timeZone)
      const window = dayWindow(date, timeZone)
      from = window.endMs
      const eligibility = dayEligibility(db, date, window.startMs, window.endMs)
      if (!eligibility.eligible || eligibility.maxReceivedAt === null) {
        log.info({ day: date, rows: eligibility.rows, maxReceivedAt: eligibility.maxReceivedAt, lastSuccessStartedAt: eligibility.lastSuccessStartedAt }, 'raw day kept: not summarised after its last record')
        days.push({ date, rows: eligibility.rows, action: 'kept_unsummarised' })
        continue
      }
      const selection: DaySelection = { date, startMs: window.startMs, endMs: window.endMs, maxReceivedAt: eligibility.maxReceivedAt }
      // Rows covered by this pass; records arriving meanwhile are newer than maxReceivedAt and stay.
      const covered = (
        db.$client
          .prepare('SELECT count(*) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? AND received_at <= ?')
          .pluck()
          .get(window.startMs, window.endMs, eligibility.maxReceivedAt) as number
      )

      let archiveName: string | undefined
      if (deps.archiveDir) {
        let archived: string | 'conflict'
        try {
          archived = await archiveDay(deps, reader ?? db.$client, selection, covered, iso)
        } catch (e) {
          // A full disk or an unwritable folder: keep the day, try the others, report it.
          log.error({ day: date, err: e }, 'raw day kept: archive failed')
          days.push({ date, rows: covered, action: 'kept_archive_failed' })
          continue
        }
        if (archived === 'conflict') {
          days.push({ date, rows: covered, action: 'kept_archive_conflict' })
          continue
        }
        archiveName = archived
      } else {
        recordArchive(db, { date, fileName: null, rows: covered, bytes: null, sha256: null, at: iso() })
      }

      let deleted = 0
      for (;;) {
        const changes = deleteChunk.run(window.startMs, window.endMs, eligibility.maxReceivedAt, chunkRows).changes
        deleted += changes
        if (changes < chunkRows) break
        await yieldNow()
      }
      markPurged(db, date, iso())
      deletedRows += deleted
      log.info({ day: date, rows: deleted, archive: archiveName ?? null }, 'raw day removed by retention')
      days.push({ date, rows: deleted, action: 'deleted', ...(archiveName ? { archive: archiveName } : {}) })
      await yieldNow()
    }
  } finally {
    reader?.close()
  }
  const freedPages = deletedRows > 0 ? await returnFreePages(db, deps.vacuumPages ?? DEFAULT_VACUUM_PAGES, yieldNow) : 0
  if (days.length > 0) log.info({ cutoffDate, deletedRows, freedPages, days: days.length }, 'retention pass done')
  return { mode: 'sqlite', cutoffDate, days, deletedRows, freedPages }
}

/**
 * Makes sure an archive of the day covering `covered` rows exists before anything is deleted.
 * Returns the file name, or 'conflict' when an earlier archive and the database disagree both ways.
 */
async function archiveDay(
  deps: RetentionDeps,
  conn: Database.Database,
  day: DaySelection,
  covered: number,
  iso: () => string,
): Promise<string | 'conflict'> {
  const dir = deps.archiveDir!
  // Written once: an earlier pass (interrupted before its deletes finished) or a restore left one.
  // A file without a record (the database was restored from a backup) is treated the same way, so
  // it is never overwritten with fewer rows than it holds.
  const recorded = getArchive(deps.db, day.date)?.file_name
  const existing = recorded ?? (existsSync(join(dir, archiveFileName(day.date))) ? archiveFileName(day.date) : undefined)
  if (existing) {
    // Read before the comparison, which keeps a statement of `conn` open; voids of a day are few.
    const voided = new Set(
      deps.db.$client
        .prepare('SELECT request_id FROM usage_event_voids WHERE occurred_at >= ? AND occurred_at < ?')
        .pluck()
        .all(day.startMs, day.endMs) as string[],
    )
    const diff = await compareArchiveWithDb(conn, join(dir, existing), day, (id) => voided.has(id)).catch((e: unknown) => {
      deps.log.warn({ day: day.date, err: e }, 'existing raw archive unreadable; writing it again')
      return { onlyInDb: covered, onlyInFile: 0 }
    })
    if (diff.onlyInDb === 0) {
      if (!recorded) {
        const facts = await inspectArchiveFile(join(dir, existing))
        recordArchive(deps.db, { date: day.date, fileName: existing, rows: facts.rows, bytes: facts.bytes, sha256: facts.sha256, at: iso() })
      }
      return existing
    }
    if (diff.onlyInFile > 0) {
      deps.log.error({ day: day.date, ...diff }, 'raw archive and database disagree both ways; day kept, restore the archive to merge them')
      return 'conflict'
    }
    // The database holds everything the archive holds and more (a restore plus late records).
  }
  const facts = await writeDayArchive(conn, dir, day)
  if (facts.rows !== covered) {
    throw new Error(`archive of ${day.date} holds ${facts.rows} rows, the database ${covered}: nothing deleted`)
  }
  recordArchive(deps.db, { date: day.date, fileName: facts.fileName, rows: facts.rows, bytes: facts.bytes, sha256: facts.sha256, at: iso() })
  return facts.fileName
}

/**
 * Hands free pages back to the OS in small steps, each a short write transaction, so readers and
 * the writer are never held up for long. Only a file in auto_vacuum=INCREMENTAL mode can do this;
 * in any other mode freed pages stay on the freelist and are reused by new rows (the file stops
 * growing but does not shrink) — see the README (data lifecycle) for the one-off conversion.
 */
export async function returnFreePages(db: Db, pagesPerStep: number, yieldNow: () => Promise<void>): Promise<number> {
  if (db.$client.pragma('auto_vacuum', { simple: true }) !== 2) return 0
  let freed = 0
  for (;;) {
    const before = db.$client.pragma('freelist_count', { simple: true }) as number
    if (before === 0) break
    db.$client.pragma(`incremental_vacuum(${pagesPerStep})`)
    const after = db.$client.pragma('freelist_count', { simple: true }) as number
    freed += before - after
    if (after === 0 || after >= before) break
    await yieldNow()
  }
  // Moves the shrunken pages from the WAL into the main file, so its size drops now, not at the next auto-checkpoint.
  db.$client.pragma('wal_checkpoint(PASSIVE)')
  return freed
}
