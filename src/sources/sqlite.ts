// The embedded raw store: `usage_events` in the service's own SQLite file (docs/data-model.md#modes).
// Aggregations are read here; records are written through the store's raw-events repository.
import type Database from 'better-sqlite3'
import type { Clock } from '../clock.js'
import { conflictError } from '../errors.js'
import { openSqliteReader } from '../db/sqlite/reader.js'
import type { SqliteStore } from '../db/sqlite/store.js'
import type { AggregateOptions, AggregateRow, ClientAggregate, IngestResult, SourceHealth, UsageSource } from './types.js'
import type { UsageEvent } from '../usage-event.js'
import { AGGREGATE_SQL, GROUP_SQL, safe, windowHasAtLeast } from './sqlite-sql.js'
import { readDayInThread, readDayInWorker } from './sqlite-day.js'

export interface SqliteSourceOptions {
  store: SqliteStore
  clock: Clock
  /**
   * Whole days with at least this many records are read in a worker thread (default WORKER_MIN_RECORDS);
   * smaller ones on the calling thread, where starting a worker would cost more than the read.
   */
  workerMinRecords?: number
}

const WORKER_MIN_RECORDS = 20_000

type RawAggregate = Pick<AggregateRow, 'client_org_id' | 'external_user' | 'model'> & {
  input_tokens: bigint
  output_tokens: bigint
  total_tokens: bigint
  raw_cost_nano_usd: bigint
  total_requests: bigint
}

export { AGGREGATE_SQL, GROUP_SQL } from './sqlite-sql.js'

/**
 * Aggregation reads through a second, read-only connection on the file, so that a long grouped scan
 * never holds the writer connection busy (WAL lets both proceed at once). A database in memory
 * (tests) has no second connection: the writer is used and results are materialised first.
 */
export function createSqliteSource(options: SqliteSourceOptions): UsageSource {
  const { store, clock } = options
  const path = store.path
  const writer = store.db.$client
  const reader = path !== ':memory:' ? openSqliteReader(path) : undefined

  const statements = new Map<string, Database.Statement>()
  function statement(conn: Database.Database, key: string, sql: string): Database.Statement {
    const k = `${conn === reader ? 'r' : 'w'}:${key}`
    let s = statements.get(k)
    if (!s) {
      // SUM over integers is exact in SQLite (64-bit); read it as bigint so nothing passes through a double.
      s = conn.prepare(sql).safeIntegers(true)
      statements.set(k, s)
    }
    return s
  }

  function toRow(r: RawAggregate): AggregateRow {
    return {
      client_org_id: r.client_org_id,
      external_user: r.external_user,
      model: r.model,
      input_tokens: safe(r.input_tokens),
      output_tokens: safe(r.output_tokens),
      total_tokens: safe(r.total_tokens),
      total_requests: safe(r.total_requests),
      raw_cost_nano_usd: r.raw_cost_nano_usd,
    }
  }

  return {
    dataSource: 'sqlite',
    dialect: 'sqlite',

    // A file-backed store reads whole days client by client, large ones in a worker thread
    // (sqlite-day.ts), so that one client whose sums cannot be read fails alone. (In memory, for
    // tests, the day is one grouped query: such a client fails the day.)
    ...(reader
      ? {
          aggregateClients(window: { startMs: number; endMs: number }, signal?: AbortSignal): AsyncIterable<ClientAggregate> {
            const read = { path, startMs: window.startMs, endMs: window.endMs, signal }
            const large = windowHasAtLeast(reader, window, options.workerMinRecords ?? WORKER_MIN_RECORDS)
            return large ? readDayInWorker(read) : readDayInThread(read)
          },
        }
      : {}),

    async *aggregate(window, aggregateOptions: AggregateOptions = {}) {
      const params: Record<string, unknown> = { startMs: window.startMs, endMs: window.endMs }
      let sql = AGGREGATE_SQL
      if (aggregateOptions.clientOrgId !== undefined) {
        sql += ' AND client_org_id = @clientOrgId'
        params.clientOrgId = aggregateOptions.clientOrgId
      }
      sql += GROUP_SQL
      if (reader) {
        // A statement of its own per call: two days aggregated at once (an API run beside a tick)
        // would otherwise iterate one shared statement, which better-sqlite3 refuses as busy.
        const own = reader.prepare(sql).safeIntegers(true)
        for (const r of own.iterate(params) as IterableIterator<RawAggregate>) {
          aggregateOptions.signal?.throwIfAborted()
          yield toRow(r)
        }
      } else {
        // One connection: finish the statement before yielding, or a write elsewhere would find it busy.
        const rows = statement(writer, sql, sql).all(params) as RawAggregate[]
        for (const r of rows) yield toRow(r)
      }
    },

    async ingest(events: UsageEvent[]): Promise<IngestResult> {
      const { accepted, conflicts } = await store.rawEvents.ingest(events, clock.now())
      if (conflicts.length > 0) throw conflictError(conflicts)
      return { accepted, duplicates: events.length - accepted }
    },

    voidEvents: (requestIds, reason, nowMs) => store.voids.void(requestIds, reason, nowMs),

    listVoids: (window) => store.voids.list(window),

    async check(): Promise<SourceHealth> {
      const started = performance.now()
      writer.prepare('SELECT 1').get()
      return { status: 'up', detail: { latency_ms: Math.round((performance.now() - started) * 1000) / 1000 } }
    },

    async close() {
      reader?.close()
    },
  }
}
