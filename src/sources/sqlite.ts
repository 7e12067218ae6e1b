// The embedded raw store: `usage_events` in the service's own SQLite file (SPEC §2).
import Database from 'better-sqlite3'
import type { Db } from '../db/open.js'
import type { Clock } from '../clock.js'
import type { AggregateOptions, AggregateRow, ClientAggregate, IngestResult, SourceHealth, UsageEvent, UsageSource, VoidResult } from './types.js'
import { conflictError, differingFields, type EventConflict } from './event-content.js'
import { AGGREGATE_SQL, GROUP_SQL, INSERT_EVENT_SQL, safe, windowHasAtLeast } from './sqlite-sql.js'
import { readDayInThread, readDayInWorker } from './sqlite-day.js'

export interface SqliteSourceOptions {
  db: Db
  clock: Clock
  /**
   * The database file. Aggregation reads through a second, read-only connection on it, so that a
   * long grouped scan never holds the writer connection busy (WAL lets both proceed at once).
   * Omitted (or ':memory:'): the writer connection is used and results are materialised first.
   */
  path?: string
  /**
   * Whole days with at least this many records are read in a worker thread (default 20,000);
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

export { AGGREGATE_SQL, GROUP_SQL, INSERT_EVENT_SQL } from './sqlite-sql.js'

/** A usage_events row read with safeIntegers: every integer a bigint. */
interface RawStored {
  request_id: string
  client_org_id: string
  model: string
  external_user: string
  input_tokens: bigint
  output_tokens: bigint
  total_tokens: bigint
  cost_nano_usd: bigint
  occurred_at_ms: bigint
  received_at_ms: bigint
}
type RawVoided = RawStored & { reason: string; voided_at_ms: bigint }

function fromStored(r: RawStored): UsageEvent {
  return {
    request_id: r.request_id,
    client_org_id: r.client_org_id,
    model: r.model,
    external_user: r.external_user,
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
    total_tokens: Number(r.total_tokens),
    cost_nano_usd: r.cost_nano_usd,
    occurred_at_ms: Number(r.occurred_at_ms),
  }
}

export function createSqliteSource(options: SqliteSourceOptions): UsageSource {
  const { db, clock } = options
  const writer = db.$client
  const reader =
    options.path && options.path !== ':memory:' ? new Database(options.path, { readonly: true, fileMustExist: true }) : undefined
  if (reader) reader.pragma('busy_timeout = 5000')

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

  // Positional parameters: ingestion binds ten values per record, and binding by position spares
  // better-sqlite3 a property lookup by name for each (and the record a copy to add received_at).
  const insertEvent = writer.prepare(INSERT_EVENT_SQL)

  const storedEvent = writer
    .prepare(
      `SELECT request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens,
              cost_nano_usd, occurred_at AS occurred_at_ms, received_at AS received_at_ms
       FROM usage_events WHERE request_id = ?`,
    )
    .safeIntegers(true)
  const voidedEvent = writer
    .prepare(
      `SELECT request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens,
              cost_nano_usd, occurred_at AS occurred_at_ms, received_at AS received_at_ms, reason, voided_at AS voided_at_ms
       FROM usage_event_voids WHERE request_id = ?`,
    )
    .safeIntegers(true)
  const anyVoid = writer.prepare('SELECT EXISTS (SELECT 1 FROM usage_event_voids)').pluck()
  const voidedAmong = writer
    .prepare('SELECT request_id, reason, voided_at AS voided_at_ms FROM usage_event_voids WHERE request_id IN (SELECT value FROM json_each(?))')
    .safeIntegers(true)
  const moveToVoids = writer.prepare(
    `INSERT INTO usage_event_voids (request_id, client_org_id, model, external_user, input_tokens, output_tokens,
                                    total_tokens, cost_nano_usd, occurred_at, received_at, reason, voided_at)
     SELECT request_id, client_org_id, model, external_user, input_tokens, output_tokens,
            total_tokens, cost_nano_usd, occurred_at, received_at, @reason, @voidedAt
     FROM usage_events WHERE request_id = @requestId`,
  )
  const deleteEvent = writer.prepare('DELETE FROM usage_events WHERE request_id = ?')
  const voidsInWindow = writer
    .prepare(
      `SELECT request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens,
              cost_nano_usd, occurred_at AS occurred_at_ms, received_at AS received_at_ms, reason, voided_at AS voided_at_ms
       FROM usage_event_voids WHERE occurred_at >= ? AND occurred_at < ? ORDER BY occurred_at, request_id`,
    )
    .safeIntegers(true)

  /**
   * Stores the new records; a record whose request_id is stored with other content, or voided,
   * refuses the whole call (the transaction rolls back) with every conflicting index.
   */
  const insertAll = writer.transaction((events: UsageEvent[], receivedAt: number): number => {
    let inserted = 0
    const conflicts: EventConflict[] = []
    // Voids are rare: one probe per call spares the lookup while there are none; when there are,
    // the call's ids are looked up in one statement rather than one per record.
    const voided =
      anyVoid.get() === 1
        ? new Map((voidedAmong.all(JSON.stringify(events.map((e) => e.request_id))) as Array<Pick<RawVoided, 'request_id' | 'reason' | 'voided_at_ms'>>).map((v) => [v.request_id, v]))
        : undefined
    events.forEach((e, index) => {
      const isVoided = voided?.get(e.request_id)
      if (isVoided) {
        conflicts.push({
          index,
          field: 'request_id',
          message: `was voided on ${new Date(Number(isVoided.voided_at_ms)).toISOString()} (${isVoided.reason}); a voided request_id cannot be ingested again`,
        })
        return
      }
      const changes = insertEvent.run(
        e.request_id,
        e.client_org_id,
        e.model,
        e.external_user,
        e.input_tokens,
        e.output_tokens,
        e.total_tokens,
        e.cost_nano_usd,
        e.occurred_at_ms,
        receivedAt,
      ).changes
      if (changes === 1) {
        inserted += 1
        return
      }
      const differing = differingFields(fromStored(storedEvent.get(e.request_id) as RawStored), e)
      if (differing.length > 0) conflicts.push({ index, field: 'request_id', message: `already stored with different ${differing.join(', ')}` })
    })
    if (conflicts.length > 0) throw conflictError(conflicts)
    return inserted
  })

  const voidAll = writer.transaction((requestIds: string[], reason: string, nowMs: number): VoidResult => {
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
    return result
  })

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
    ...(reader && options.path
      ? {
          aggregateClients(window: { startMs: number; endMs: number }, signal?: AbortSignal): AsyncIterable<ClientAggregate> {
            const read = { path: options.path!, startMs: window.startMs, endMs: window.endMs, signal }
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
      const inserted = insertAll(events, clock.now())
      return { accepted: inserted, duplicates: events.length - inserted }
    },

    voidEvents(requestIds, reason, nowMs) {
      return voidAll(requestIds, reason, nowMs)
    },

    listVoids(window) {
      return (voidsInWindow.all(window.startMs, window.endMs) as RawVoided[]).map((v) => ({
        ...fromStored(v),
        received_at_ms: Number(v.received_at_ms),
        reason: v.reason,
        voided_at_ms: Number(v.voided_at_ms),
      }))
    },

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
