// What the embedded store holds and what it costs on disk (GET /batch/storage).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Static } from 'typebox'
import { addDays, dayWindow, localDateOf } from '../clock.js'
import type { Store } from '../db/store.js'
import type { StorageResponse } from '../schemas/storage.js'

export interface StorageDeps {
  store: Store
  timeZone: string
  archiveDir?: string
}

/** The report without the retention settings beside it. */
export type StorageReport = Omit<Static<typeof StorageResponse>, 'retention'>

function monthStart(date: string): string {
  return `${date.slice(0, 7)}-01`
}

function nextMonth(firstOfMonth: string): string {
  return monthStart(addDays(firstOfMonth, 32))
}

export async function storageReport(deps: StorageDeps): Promise<StorageReport> {
  const { store, timeZone } = deps
  const range = await store.rawEvents.extent()
  const tableBytes = await store.rawEvents.tableBytes()
  const months: StorageReport['raw']['months'] = []
  let totalBytes = 0
  if (range.oldestMs !== null && range.newestMs !== null) {
    const last = monthStart(localDateOf(range.newestMs, timeZone))
    // Months are local (business time zone) calendar months, as the days are. With the engine's own
    // byte count only the row count is needed per month, which the occurred_at index answers alone.
    for (let m = monthStart(localDateOf(range.oldestMs, timeZone)); m <= last; m = nextMonth(m)) {
      const window = { startMs: dayWindow(m, timeZone).startMs, endMs: dayWindow(nextMonth(m), timeZone).startMs }
      const r = await store.rawEvents.countIn(window, tableBytes === null)
      if (r.rows === 0) continue
      months.push({ month: m.slice(0, 7), rows: r.rows, bytes: r.bytes })
    }
    if (tableBytes !== null) {
      // The engine knows bytes per table, not per month: share them out by row count, remainder to the last month.
      let given = 0
      months.forEach((month, i) => {
        month.bytes = i === months.length - 1 ? tableBytes - given : Math.floor((tableBytes * month.rows) / range.rows)
        given += month.bytes
      })
      totalBytes = tableBytes
    } else {
      totalBytes = months.reduce((s, m) => s + m.bytes, 0)
    }
  }

  return {
    raw: {
      rows: range.rows,
      bytes: totalBytes,
      bytes_method: tableBytes !== null ? 'dbstat' : 'row_size',
      oldest_day: range.oldestMs === null ? null : localDateOf(range.oldestMs, timeZone),
      newest_day: range.newestMs === null ? null : localDateOf(range.newestMs, timeZone),
      months,
    },
    archives: (await store.archives.list()).map((a) => ({
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
    sqlite: await store.diskUsage(),
  }
}
