// What the embedded store holds and what it costs on disk (GET /batch/storage).
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { addDays, dayWindow, localDateOf } from '../clock.js'
import { listArchives } from '../db/archives.js'
import type { Db } from '../db/open.js'

export interface StorageDeps {
  db: Db
  dbPath: string
  timeZone: string
  archiveDir?: string
}

export interface StorageReport {
  raw: {
    rows: number
    bytes: number
    /** `dbstat`: pages of usage_events and its indexes, shared out by row count; `row_size`: summed column sizes. */
    bytes_method: 'dbstat' | 'row_size'
    oldest_day: string | null
    newest_day: string | null
    months: Array<{ month: string; rows: number; bytes: number }>
  }
  archives: Array<{
    usage_date: string
    file_name: string | null
    rows: number
    bytes: number | null
    sha256: string | null
    archived_at: string | null
    purged_at: string | null
    restored_at: string | null
    file_present: boolean | null
  }>
  sqlite: {
    path: string
    file_bytes: number
    wal_bytes: number
    page_size: number
    page_count: number
    freelist_count: number
    free_bytes: number
    auto_vacuum: 'none' | 'full' | 'incremental'
  }
}

/** Approximate stored size of a row without dbstat: text bytes plus 8 per integer column. */
const ROW_SIZE_SQL = `coalesce(sum(length(CAST(request_id AS BLOB)) + length(CAST(client_org_id AS BLOB)) + length(CAST(model AS BLOB))
  + length(CAST(external_user AS BLOB)) + 6 * 8), 0)`

/** Bytes of usage_events and its indexes from the dbstat virtual table, or null when the build lacks it. */
export function rawTableBytes(db: Db): number | null {
  try {
    return (
      (db.$client
        .prepare("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'usage_events' OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_events')")
        .pluck()
        .get() as number) ?? 0
    )
  } catch {
    return null
  }
}

function monthStart(date: string): string {
  return `${date.slice(0, 7)}-01`
}

function nextMonth(firstOfMonth: string): string {
  return monthStart(addDays(firstOfMonth, 32))
}

export function storageReport(deps: StorageDeps): StorageReport {
  const { db, timeZone } = deps
  const c = db.$client
  const range = c.prepare('SELECT count(*) AS n, min(occurred_at) AS lo, max(occurred_at) AS hi FROM usage_events').get() as {
    n: number
    lo: number | null
    hi: number | null
  }
  const tableBytes = rawTableBytes(db)
  const months: StorageReport['raw']['months'] = []
  let totalBytes = 0
  if (range.lo !== null && range.hi !== null) {
    // With dbstat the count alone is needed, and the occurred_at index answers it without reading rows.
    const sizeSql = tableBytes === null ? ROW_SIZE_SQL : '0'
    const perMonth = c.prepare(`SELECT count(*) AS n, ${sizeSql} AS b FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?`)
    const last = monthStart(localDateOf(range.hi, timeZone))
    // Months are local (business time zone) calendar months, as the days are.
    for (let m = monthStart(localDateOf(range.lo, timeZone)); m <= last; m = nextMonth(m)) {
      const r = perMonth.get(dayWindow(m, timeZone).startMs, dayWindow(nextMonth(m), timeZone).startMs) as { n: number; b: number }
      if (r.n === 0) continue
      months.push({ month: m.slice(0, 7), rows: r.n, bytes: r.b })
    }
    if (tableBytes !== null) {
      // dbstat knows pages per table, not per month: share them out by row count, remainder to the last month.
      let given = 0
      months.forEach((month, i) => {
        month.bytes = i === months.length - 1 ? tableBytes - given : Math.floor((tableBytes * month.rows) / range.n)
        given += month.bytes
      })
      totalBytes = tableBytes
    } else {
      totalBytes = months.reduce((s, m) => s + m.bytes, 0)
    }
  }

  const pageSize = c.pragma('page_size', { simple: true }) as number
  const pageCount = c.pragma('page_count', { simple: true }) as number
  const freelist = c.pragma('freelist_count', { simple: true }) as number
  const autoVacuum = c.pragma('auto_vacuum', { simple: true }) as number
  const fileBytes = deps.dbPath !== ':memory:' && existsSync(deps.dbPath) ? statSync(deps.dbPath).size : 0
  const walPath = `${deps.dbPath}-wal`
  const walBytes = deps.dbPath !== ':memory:' && existsSync(walPath) ? statSync(walPath).size : 0

  return {
    raw: {
      rows: range.n,
      bytes: totalBytes,
      bytes_method: tableBytes !== null ? 'dbstat' : 'row_size',
      oldest_day: range.lo === null ? null : localDateOf(range.lo, timeZone),
      newest_day: range.hi === null ? null : localDateOf(range.hi, timeZone),
      months,
    },
    archives: listArchives(db).map((a) => ({
      usage_date: a.usage_date,
      file_name: a.file_name,
      rows: a.row_count,
      bytes: a.bytes,
      sha256: a.sha256,
      archived_at: a.archived_at,
      purged_at: a.purged_at,
      restored_at: a.restored_at,
      file_present: a.file_name && deps.archiveDir ? existsSync(join(deps.archiveDir, a.file_name)) : null,
    })),
    sqlite: {
      path: deps.dbPath,
      file_bytes: fileBytes,
      wal_bytes: walBytes,
      page_size: pageSize,
      page_count: pageCount,
      freelist_count: freelist,
      free_bytes: freelist * pageSize,
      auto_vacuum: autoVacuum === 1 ? 'full' : autoVacuum === 2 ? 'incremental' : 'none',
    },
  }
}
