// The embedded raw store's writes and bookkeeping in the SQLite file: ingestion (its transaction is
// ingest.ts, shared with the ingest writer's thread), voids, and what retention, archives and the
// storage report need of usage_events. Its aggregation reads are the raw source's own
// (src/sources/sqlite.ts).
import { existsSync, statSync } from 'node:fs'
import type { Db } from './open.js'
import { USAGE_EVENT_COLUMNS } from '../schema.js'
import { openSqliteReader } from './reader.js'
import { usageEventOf, type UsageEvent, type VoidedEvent } from '../../usage-event.js'
import { createIngest, STORED_COLUMNS, type RawStored } from './ingest.js'
import type { SqliteGeneration } from './generation.js'
import type {
  ArchiveLine,
  DaySelection,
  RawDayStats,
  RawEventRepository,
  StoreDiskUsage,
  TimeWindow,
  VoidRepository,
  VoidResult,
} from '../store.js'

const COLUMNS = USAGE_EVENT_COLUMNS.join(', ')

type RawVoided = RawStored & { reason: string; voided_at_ms: bigint }

const fromStored = (r: RawStored): UsageEvent => usageEventOf(r)

function fromVoided(v: RawVoided): VoidedEvent {
  return { ...fromStored(v), received_at_ms: Number(v.received_at_ms), reason: v.reason, voided_at_ms: Number(v.voided_at_ms) }
}

/** Approximate stored size of a row without dbstat: text bytes plus 8 per integer column. */
const ROW_SIZE_SQL = `coalesce(sum(length(CAST(request_id AS BLOB)) + length(CAST(client_org_id AS BLOB)) + length(CAST(model AS BLOB))
  + length(CAST(external_user AS BLOB)) + 6 * 8), 0)`

export function createSqliteRawEvents(db: Db, path: string, generation: SqliteGeneration): { rawEvents: RawEventRepository; voids: VoidRepository; diskUsage(): StoreDiskUsage } {
  const c = db.$client

  /**
   * Every statement, prepared on first use: a store opened without migrations (readiness checks,
   * `usage-batch status` on an old file) has no tables to prepare them against yet.
   */
  function prepare() {
    const storedEvent = c.prepare(`SELECT ${STORED_COLUMNS} FROM usage_events WHERE request_id = ?`).safeIntegers(true)
    const voidedEvent = c
      .prepare(`SELECT ${STORED_COLUMNS}, reason, voided_at AS voided_at_ms FROM usage_event_voids WHERE request_id = ?`)
      .safeIntegers(true)
    const moveToVoids = c.prepare(
      `INSERT INTO usage_event_voids (${COLUMNS}, reason, voided_at)
       SELECT ${COLUMNS}, @reason, @voidedAt FROM usage_events WHERE request_id = @requestId`,
    )
    const deleteEvent = c.prepare('DELETE FROM usage_events WHERE request_id = ?')
    const voidsInWindow = c
      .prepare(
        `SELECT ${STORED_COLUMNS}, reason, voided_at AS voided_at_ms
         FROM usage_event_voids WHERE occurred_at >= ? AND occurred_at < ? ORDER BY occurred_at, request_id`,
      )
      .safeIntegers(true)
    const voidedIdsInWindow = c.prepare('SELECT request_id FROM usage_event_voids WHERE occurred_at >= ? AND occurred_at < ?').pluck()

    const voidAll = c.transaction((requestIds: readonly string[], reason: string, nowMs: number): VoidResult => {
      const result: VoidResult = { voided: [], not_found: [], already_voided: [] }
      const seen = new Set<string>()
      for (const requestId of requestIds) {
        if (seen.has(requestId)) continue
        seen.add(requestId)
        const stored = storedEvent.get(requestId) as RawStored | undefined
        if (!stored) {
          if (voidedEvent.get(requestId)) result.already_voided.push(requestId)
          else result.not_found.push(requestId)
          continue
        }
        moveToVoids.run({ requestId, reason, voidedAt: nowMs })
        deleteEvent.run(requestId)
        result.voided.push({ ...fromStored(stored), received_at_ms: Number(stored.received_at_ms), reason, voided_at_ms: nowMs })
      }
      if (result.voided.length > 0) generation.bump()
      return result
    })

    const earliest = c.prepare('SELECT min(occurred_at) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?').pluck()
    const dayStats = c.prepare('SELECT count(*) AS n, max(received_at) AS maxReceived FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?')
    const lastVoid = c.prepare('SELECT max(voided_at) FROM usage_event_voids WHERE occurred_at >= ? AND occurred_at < ?').pluck()
    const countSelected = c.prepare('SELECT count(*) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? AND received_at <= ?').pluck()
    const deleteChunk = c.prepare(
      `DELETE FROM usage_events WHERE rowid IN (
         SELECT rowid FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? AND received_at <= ? LIMIT ?)`,
    )
    // A record voided after the day was archived stays voided: its row in the file is skipped.
    const restoreRow = c.prepare(
      `INSERT INTO usage_events (${COLUMNS}) SELECT ${USAGE_EVENT_COLUMNS.map((f) => '@' + f).join(', ')}
       WHERE NOT EXISTS (SELECT 1 FROM usage_event_voids WHERE request_id = @request_id)
       ON CONFLICT (request_id) DO NOTHING`,
    )
    const isVoided = c.prepare('SELECT EXISTS (SELECT 1 FROM usage_event_voids WHERE request_id = ?)').pluck()
    const restoreAll = c.transaction((rows: readonly ArchiveLine[]) => {
      let inserted = 0
      let voided = 0
      for (const row of rows) {
        if (restoreRow.run(row).changes === 1) inserted += 1
        else if (isVoided.get(row.request_id) === 1) voided += 1
      }
      return { inserted, voided }
    })
    const extent = c.prepare('SELECT count(*) AS n, min(occurred_at) AS lo, max(occurred_at) AS hi FROM usage_events')
    const countIn = c.prepare('SELECT count(*) AS n, 0 AS b FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?')
    const countAndSizeIn = c.prepare(`SELECT count(*) AS n, ${ROW_SIZE_SQL} AS b FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?`)
    return { voidAll, voidsInWindow, voidedIdsInWindow, earliest, dayStats, lastVoid, countSelected, deleteChunk, restoreAll, extent, countIn, countAndSizeIn }
  }
  let prepared: ReturnType<typeof prepare> | undefined
  const st = () => (prepared ??= prepare())
  const ingest = createIngest(c)

  const selectDaySql = `SELECT ${COLUMNS} FROM usage_events
    WHERE occurred_at >= @startMs AND occurred_at < @endMs AND received_at <= @maxReceivedAt
    ORDER BY request_id`

  async function* exportDay(selection: DaySelection): AsyncGenerator<ArchiveLine> {
    const params = { startMs: selection.startMs, endMs: selection.endMs, maxReceivedAt: selection.maxReceivedAt }
    if (path === ':memory:') {
      // No second connection on a memory database (tests): the rows are read whole first, so the
      // writer is free for other statements while they are handed out.
      yield* c.prepare(selectDaySql).all(params) as ArchiveLine[]
      return
    }
    // A connection of its own: the iterator stays open across awaits, and better-sqlite3 refuses
    // other statements on a connection with an open iterator.
    const reader = openSqliteReader(path)
    try {
      yield* reader.prepare(selectDaySql).iterate(params) as IterableIterator<ArchiveLine>
    } finally {
      reader.close()
    }
  }

  const rawEvents: RawEventRepository = {
    ingest: async (events, receivedAtMs) => ingest(events, receivedAtMs),
    earliestBetween: async (fromMs, beforeMs) => st().earliest.get(fromMs, beforeMs) as number | null,
    async dayStats(window): Promise<RawDayStats> {
      const stats = st().dayStats.get(window.startMs, window.endMs) as { n: number; maxReceived: number | null }
      return { rows: stats.n, maxReceivedAt: stats.maxReceived, lastVoidedAt: st().lastVoid.get(window.startMs, window.endMs) as number | null }
    },
    countSelected: async (s) => st().countSelected.get(s.startMs, s.endMs, s.maxReceivedAt) as number,
    deleteSelected: async (s, limit) => st().deleteChunk.run(s.startMs, s.endMs, s.maxReceivedAt, limit).changes,
    exportDay,
    restore: async (rows) => st().restoreAll(rows),
    async extent() {
      const r = st().extent.get() as { n: number; lo: number | null; hi: number | null }
      return { rows: r.n, oldestMs: r.lo, newestMs: r.hi }
    },
    async countIn(window, estimateBytes) {
      const r = (estimateBytes ? st().countAndSizeIn : st().countIn).get(window.startMs, window.endMs) as { n: number; b: number }
      return { rows: r.n, bytes: r.b }
    },
    tableBytes: async () => rawTableBytes(db),
    reclaimFreeSpace: (pagesPerStep, between) => returnFreePages(db, pagesPerStep, between),
  }

  const voids: VoidRepository = {
    // IMMEDIATE, as ingest: the call reads each record before it moves it, and a write committed by
    // another process in between would fail a deferred transaction's upgrade (SQLITE_BUSY_SNAPSHOT).
    void: async (requestIds, reason, nowMs) => st().voidAll.immediate(requestIds, reason, nowMs),
    list: async (window: TimeWindow) => (st().voidsInWindow.all(window.startMs, window.endMs) as RawVoided[]).map(fromVoided),
    requestIdsIn: async (window: TimeWindow) => new Set(st().voidedIdsInWindow.all(window.startMs, window.endMs) as string[]),
  }

  function diskUsage(): StoreDiskUsage {
    const pageSize = c.pragma('page_size', { simple: true }) as number
    const freelist = c.pragma('freelist_count', { simple: true }) as number
    const autoVacuum = c.pragma('auto_vacuum', { simple: true }) as number
    const size = (file: string) => (path !== ':memory:' && existsSync(file) ? statSync(file).size : 0)
    return {
      path,
      file_bytes: size(path),
      wal_bytes: size(`${path}-wal`),
      page_size: pageSize,
      page_count: c.pragma('page_count', { simple: true }) as number,
      freelist_count: freelist,
      free_bytes: freelist * pageSize,
      auto_vacuum: autoVacuum === 1 ? 'full' : autoVacuum === 2 ? 'incremental' : 'none',
    }
  }

  return { rawEvents, voids, diskUsage }
}

/** Bytes of usage_events and its indexes from the dbstat virtual table, or null when the build lacks it. */
function rawTableBytes(db: Db): number | null {
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

/**
 * Hands free pages back to the OS in small steps, each a short write transaction, so readers and
 * the writer are never held up for long. Only a file in auto_vacuum=INCREMENTAL mode can do this;
 * in any other mode freed pages stay on the freelist and are reused by new rows (the file stops
 * growing but does not shrink): see docs/operations.md#disk-space for the one-off conversion.
 */
async function returnFreePages(db: Db, pagesPerStep: number, between: () => Promise<void>): Promise<number> {
  if (db.$client.pragma('auto_vacuum', { simple: true }) !== 2) return 0
  let freed = 0
  for (;;) {
    const before = db.$client.pragma('freelist_count', { simple: true }) as number
    if (before === 0) break
    db.$client.pragma(`incremental_vacuum(${pagesPerStep})`)
    const after = db.$client.pragma('freelist_count', { simple: true }) as number
    freed += before - after
    if (after === 0 || after >= before) break
    await between()
  }
  // Moves the shrunken pages from the WAL into the main file, so its size drops now, not at the next auto-checkpoint.
  db.$client.pragma('wal_checkpoint(PASSIVE)')
  return freed
}
