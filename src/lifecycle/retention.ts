// Raw retention in the embedded store. A local day's raw rows go only when the day is older than
// RAW_RETENTION_DAYS and a successful run of it started after its last record arrived: billing never
// loses a record that no summary holds. Deletion runs in bounded chunks with the event loop free
// between them, after the scheduled tick, never on a request.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { addDays, dayWindow, localDateOf, today, type Clock } from '../clock.js'
import type { DataSource } from '../db/enums.js'
import { rawDataSource } from '../config.js'
import type { DaySelection, Store } from '../db/store.js'
import { archiveFileName, compareArchiveWithDb, inspectArchiveFile, writeDayArchive } from './archive.js'

export interface RetentionDeps {
  store: Store
  clock: Clock
  log: Logger
  timeZone: string
  /** RAW_RETENTION_DAYS; 0 keeps everything. */
  retentionDays: number
  /** RAW_ARCHIVE_DIR; unset: rows are deleted without an archive. */
  archiveDir?: string
  /** InfluxDB-first: the bucket's retention policy rules and this is a no-op. */
  influxdbFirst: boolean
  /** Which store's usage_events table the pass works on (default `sqlite`): the report's mode. */
  embedded?: 'sqlite' | 'postgresql'
  /** Rows per delete transaction (default DEFAULT_CHUNK_ROWS). */
  chunkRows?: number
  /** Pages per incremental_vacuum step (default DEFAULT_VACUUM_PAGES). */
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
  mode: DataSource | 'disabled'
  /** Days before this date are eligible (null when nothing is). */
  cutoffDate: string | null
  days: RetentionDay[]
  deletedRows: number
  /** Pages handed back to the OS by incremental vacuum. */
  freedPages: number
}

const DEFAULT_CHUNK_ROWS = 5_000
const DEFAULT_VACUUM_PAGES = 2_000

/** What /health can say about raw retention. */
export function retentionInfo(config: { influxdbFirst: boolean; DATABASE_URL?: string; RAW_RETENTION_DAYS: number; RAW_ARCHIVE_DIR?: string }) {
  const mode = rawDataSource(config)
  if (mode === 'influxdb_first') {
    return { mode, managed_by: "the InfluxDB bucket's retention policy", raw_retention_days: null, archive_dir: null }
  }
  return {
    mode,
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
export async function dayEligibility(store: Store, date: string, startMs: number, endMs: number): Promise<DayEligibility> {
  const stats = await store.rawEvents.dayStats({ startMs, endMs })
  // A void changes the day as much as an arrival does: the day's summaries must have been rerun since.
  const lastChange = stats.maxReceivedAt === null ? null : Math.max(stats.maxReceivedAt, stats.lastVoidedAt ?? stats.maxReceivedAt)
  const runs = await store.runs.successStartTimes(date)
  // Compared as instants, not as text, so a differently formatted timestamp cannot mislead.
  const started = runs.map((s) => Date.parse(s)).filter((n) => Number.isFinite(n))
  const lastSuccessStartedAt = started.length > 0 ? Math.max(...started) : null
  const eligible = lastChange !== null && lastSuccessStartedAt !== null && lastSuccessStartedAt > lastChange
  return { rows: stats.rows, maxReceivedAt: stats.maxReceivedAt, lastSuccessStartedAt, eligible }
}

/**
 * One retention pass. Wiring: call `runRetention(deps)` after each scheduled tick (after the day's
 * batch runs, so yesterday's success is in the ledger), awaited or in the background; it never throws
 * for one bad day, it logs and goes on.
 */
export async function runRetention(deps: RetentionDeps): Promise<RetentionReport> {
  if (deps.influxdbFirst) return { mode: 'influxdb_first', cutoffDate: null, days: [], deletedRows: 0, freedPages: 0 }
  if (deps.retentionDays === 0) return { mode: 'disabled', cutoffDate: null, days: [], deletedRows: 0, freedPages: 0 }
  const { store, timeZone } = deps
  const log = deps.log.child({ component: 'retention' })
  const yieldNow = deps.yieldToEventLoop ?? (() => new Promise<void>((resolve) => setImmediate(resolve)))
  const chunkRows = deps.chunkRows ?? DEFAULT_CHUNK_ROWS
  const cutoffDate = retentionCutoff(deps.clock, timeZone, deps.retentionDays)
  const cutoffMs = dayWindow(cutoffDate, timeZone).startMs
  const iso = () => new Date(deps.clock.now()).toISOString()

  const days: RetentionDay[] = []
  let deletedRows = 0
  // Walk day by day from the oldest raw row, jumping over empty stretches.
  let from = Number.MIN_SAFE_INTEGER
  for (;;) {
    const oldest = await store.rawEvents.earliestBetween(from, cutoffMs)
    if (oldest === null) break
    const date = localDateOf(oldest, timeZone)
    const window = dayWindow(date, timeZone)
    from = window.endMs
    const eligibility = await dayEligibility(store, date, window.startMs, window.endMs)
    if (!eligibility.eligible || eligibility.maxReceivedAt === null) {
      log.info({ day: date, rows: eligibility.rows, maxReceivedAt: eligibility.maxReceivedAt, lastSuccessStartedAt: eligibility.lastSuccessStartedAt }, 'raw day kept: not summarised after its last record')
      days.push({ date, rows: eligibility.rows, action: 'kept_unsummarised' })
      continue
    }
    const selection: DaySelection = { date, startMs: window.startMs, endMs: window.endMs, maxReceivedAt: eligibility.maxReceivedAt }
    // Rows covered by this pass; records arriving meanwhile are newer than maxReceivedAt and stay.
    const covered = await store.rawEvents.countSelected(selection)

    let archiveName: string | undefined
    if (deps.archiveDir) {
      let archived: string | 'conflict'
      try {
        archived = await archiveDay(deps, selection, covered, iso)
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
      await store.archives.record({ date, fileName: null, rows: covered, bytes: null, sha256: null, at: iso() })
    }

    let deleted = 0
    for (;;) {
      const changes = await store.rawEvents.deleteSelected(selection, chunkRows)
      deleted += changes
      if (changes < chunkRows) break
      await yieldNow()
    }
    await store.archives.markPurged(date, iso())
    deletedRows += deleted
    log.info({ day: date, rows: deleted, archive: archiveName ?? null }, 'raw day removed by retention')
    days.push({ date, rows: deleted, action: 'deleted', ...(archiveName ? { archive: archiveName } : {}) })
    await yieldNow()
  }
  const freedPages = deletedRows > 0 ? await store.rawEvents.reclaimFreeSpace(deps.vacuumPages ?? DEFAULT_VACUUM_PAGES, yieldNow) : 0
  if (days.length > 0) log.info({ cutoffDate, deletedRows, freedPages, days: days.length }, 'retention pass done')
  return { mode: deps.embedded ?? 'sqlite', cutoffDate, days, deletedRows, freedPages }
}

/**
 * Makes sure an archive of the day covering `covered` rows exists before anything is deleted.
 * Returns the file name, or 'conflict' when an earlier archive and the database disagree both ways.
 */
async function archiveDay(
  deps: RetentionDeps,
  day: DaySelection,
  covered: number,
  iso: () => string,
): Promise<string | 'conflict'> {
  const dir = deps.archiveDir!
  // Written once: an earlier pass (interrupted before its deletes finished) or a restore left one.
  // A file without a record (the database was restored from a backup) is treated the same way, so
  // it is never overwritten with fewer rows than it holds.
  const { store } = deps
  const recorded = (await store.archives.get(day.date))?.file_name
  const existing = recorded ?? (existsSync(join(dir, archiveFileName(day.date))) ? archiveFileName(day.date) : undefined)
  if (existing) {
    // Voids of a day are few: read before the comparison.
    const voided = await store.voids.requestIdsIn(day)
    const diff = await compareArchiveWithDb(store, join(dir, existing), day, (id) => voided.has(id)).catch((e: unknown) => {
      deps.log.warn({ day: day.date, err: e }, 'existing raw archive unreadable; writing it again')
      return { onlyInDb: covered, onlyInFile: 0 }
    })
    if (diff.onlyInDb === 0) {
      if (!recorded) {
        const facts = await inspectArchiveFile(join(dir, existing))
        await store.archives.record({ date: day.date, fileName: existing, rows: facts.rows, bytes: facts.bytes, sha256: facts.sha256, at: iso() })
      }
      return existing
    }
    if (diff.onlyInFile > 0) {
      deps.log.error({ day: day.date, ...diff }, 'raw archive and database disagree both ways; day kept, restore the archive to merge them')
      return 'conflict'
    }
    // The database holds everything the archive holds and more (a restore plus late records).
  }
  const facts = await writeDayArchive(store, dir, day)
  if (facts.rows !== covered) {
    throw new Error(`archive of ${day.date} holds ${facts.rows} rows, the database ${covered}: nothing deleted`)
  }
  await store.archives.record({ date: day.date, fileName: facts.fileName, rows: facts.rows, bytes: facts.bytes, sha256: facts.sha256, at: iso() })
  return facts.fileName
}
