// The embedded raw store's writes and bookkeeping in PostgreSQL (`usage_events` in the shared
// database): ingestion with the conflict and void rules, voids, and what retention, archives and the
// storage report need. Aggregation reads are the raw source's own (src/sources/postgres.ts).
//
// Ingestion is one transaction: the records go in as one INSERT fed with one array per column
// (several times faster than a VALUES list: docs/postgresql.md#measured-figures), then the records
// that were not inserted are compared with what is stored and every request id with the voids; a
// conflict rolls everything back. Comparing after inserting is what makes it hold across replicas:
// an INSERT that meets a request id being written by another transaction waits for it, and the
// comparison (a new statement) sees what that transaction committed.
import type pg from 'pg'
import { differingFields, usageEventOf, type EventConflict, type UsageEvent, type VoidedEvent } from '../../usage-event.js'
import type { ArchiveLine, DaySelection, IngestOutcome, RawDayStats, RawEventRepository, TimeWindow, VoidRepository, VoidResult } from '../store.js'
import { readWithCursor } from './cursor.js'
import { BUMP_GENERATION, count, exactInteger, holdsNul, one, rows, transaction } from './sql.js'

/** usage_events' columns in table order: the field order of an archive line too. */
const COLUMNS = ['request_id', 'client_org_id', 'model', 'external_user', 'input_tokens', 'output_tokens', 'total_tokens', 'cost_nano_usd', 'occurred_at', 'received_at'] as const
const COLUMN_LIST = COLUMNS.join(', ')
const ARRAY_TYPES = ['text[]', 'text[]', 'text[]', 'text[]', 'bigint[]', 'bigint[]', 'bigint[]', 'bigint[]', 'bigint[]', 'bigint[]']

/** Ten arrays in, one row per element; `$1…$10` in COLUMNS order. */
const UNNEST_ROWS = `unnest(${ARRAY_TYPES.map((type, i) => `$${i + 1}::${type}`).join(', ')}) AS e(${COLUMN_LIST})`

/**
 * The first statement of an ingest (`ingestEvents`), fed by `ingestParameters`: the benchmark runs it
 * alone as the direct-insert limit of POST /usage/events.
 *
 * Rows go in by request_id: two ingests of the same ids (a producer's retry beside the first try, in
 * another order) then wait for each other's rows in one order, never each for the other's (deadlock
 * detected, 40P01, a 5xx to one producer).
 */
export const INGEST_SQL = `INSERT INTO usage_events (${COLUMN_LIST}) SELECT ${COLUMN_LIST} FROM ${UNNEST_ROWS}
  ORDER BY request_id
  ON CONFLICT (request_id) DO NOTHING RETURNING request_id`

/** A usage_events row as a query answers it: an archive line whose amount may lie past 2^53. */
type StoredEvent = Omit<ArchiveLine, 'cost_nano_usd'> & { cost_nano_usd: number | bigint }
type StoredVoid = StoredEvent & { reason: string; voided_at: number }

const fromStored = (r: StoredEvent): UsageEvent => usageEventOf({ ...r, occurred_at_ms: r.occurred_at })

function fromVoided(v: StoredVoid): VoidedEvent {
  return { ...fromStored(v), received_at_ms: v.received_at, reason: v.reason, voided_at_ms: v.voided_at }
}

/** One array per column, every value as text (exact for 64-bit integers). */
function columnArrays(records: ReadonlyArray<Record<(typeof COLUMNS)[number], string | number | bigint>>): string[][] {
  return COLUMNS.map((c) => records.map((r) => String(r[c])))
}

/** INGEST_SQL's parameters: one array per column, every record received at `receivedAtMs`. */
export function ingestParameters(events: readonly UsageEvent[], receivedAtMs: number): string[][] {
  return columnArrays(events.map((e) => ({ ...e, occurred_at: e.occurred_at_ms, received_at: receivedAtMs })))
}

/** The ingest conflict messages, as the SQLite store words them. */
export function voidedConflict(index: number, voidedAtMs: number, reason: string): EventConflict {
  return {
    index,
    field: 'request_id',
    message: `was voided on ${new Date(voidedAtMs).toISOString()} (${reason}); a voided request_id cannot be ingested again`,
  }
}

export function contentConflict(index: number, differing: string[]): EventConflict {
  return { index, field: 'request_id', message: `already stored with different ${differing.join(', ')}` }
}

/** Carries an ingest's conflicts out of the transaction it rolls back. */
class RefusedIngest extends Error {
  constructor(readonly conflicts: EventConflict[]) {
    super('ingest refused')
  }
}

/**
 * What POST /usage/events runs (through RawEventRepository.ingest): the records, stored in one
 * transaction unless one conflicts, in which case nothing is stored and the conflicts are answered.
 */
export async function ingestEvents(pool: pg.Pool, events: readonly UsageEvent[], receivedAtMs: number): Promise<IngestOutcome> {
  if (events.length === 0) return { accepted: 0, conflicts: [] }
  const values = ingestParameters(events, receivedAtMs)
  try {
    return await transaction(pool, async (client) => {
      const inserted = new Set((await rows<{ request_id: string }>(client, INGEST_SQL, values)).map((r) => r.request_id))
      const ids = [...new Set(events.map((e) => e.request_id))]
      const notInserted = ids.filter((id) => !inserted.has(id))
      // Voids are rare: their primary key answers for every id in one probe.
      const voided = new Map(
        (await rows<StoredVoid>(client, 'SELECT request_id, reason, voided_at FROM usage_event_voids WHERE request_id = ANY($1::text[])', [ids])).map((v) => [
          v.request_id,
          v,
        ]),
      )
      const stored =
        notInserted.length === 0
          ? new Map<string, StoredEvent>()
          : new Map((await rows<StoredEvent>(client, `SELECT ${COLUMN_LIST} FROM usage_events WHERE request_id = ANY($1::text[])`, [notInserted])).map((r) => [r.request_id, r]))
      const conflicts: EventConflict[] = []
      events.forEach((e, index) => {
        const v = voided.get(e.request_id)
        if (v) return void conflicts.push(voidedConflict(index, v.voided_at, v.reason))
        if (inserted.has(e.request_id)) return
        const existing = stored.get(e.request_id)
        const differing = existing ? differingFields(fromStored(existing), e) : []
        if (differing.length > 0) conflicts.push(contentConflict(index, differing))
      })
      if (conflicts.length > 0) throw new RefusedIngest(conflicts)
      return { accepted: inserted.size, conflicts }
    })
  } catch (error) {
    if (error instanceof RefusedIngest) return { accepted: 0, conflicts: error.conflicts }
    throw error
  }
}

export function createPostgresRawEvents(pool: pg.Pool): { rawEvents: RawEventRepository; voids: VoidRepository } {
  /** Moves each found record to the voids and answers what happened to each id, in one statement. */
  async function voidAll(requestIds: readonly string[], reason: string, nowMs: number): Promise<VoidResult> {
    const ids = [...new Set(requestIds)]
    const result: VoidResult = { voided: [], not_found: [], already_voided: [] }
    if (ids.length === 0) return result
    const found = await rows<StoredVoid & { outcome: 'voided' | 'already' }>(
      pool,
      `WITH generation AS (${BUMP_GENERATION}),
            moved AS (DELETE FROM usage_events WHERE request_id = ANY($1::text[]) RETURNING *),
            audited AS (INSERT INTO usage_event_voids (${COLUMN_LIST}, reason, voided_at)
                        SELECT ${COLUMN_LIST}, $2, $3 FROM moved RETURNING *)
       SELECT 'voided' AS outcome, ${COLUMN_LIST}, reason, voided_at FROM audited
       UNION ALL
       SELECT 'already', ${COLUMN_LIST}, reason, voided_at FROM usage_event_voids
        WHERE request_id = ANY($1::text[]) AND request_id NOT IN (SELECT request_id FROM moved)`,
      [ids.filter((id) => !holdsNul(id)), reason, nowMs],
    )
    const byId = new Map(found.map((r) => [r.request_id, r]))
    for (const id of ids) {
      const r = byId.get(id)
      if (!r) result.not_found.push(id)
      else if (r.outcome === 'already') result.already_voided.push(id)
      else result.voided.push(fromVoided(r))
    }
    return result
  }

  const rawEvents: RawEventRepository = {
    ingest: (events, receivedAtMs) => ingestEvents(pool, events, receivedAtMs),

    async earliestBetween(fromMs, beforeMs) {
      const r = await one<{ m: number | null }>(pool, 'SELECT min(occurred_at) AS m FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2', [fromMs, beforeMs])
      return r?.m ?? null
    },

    async dayStats(window): Promise<RawDayStats> {
      const r = await one<{ n: number; max_received: number | null; last_void: number | null }>(
        pool,
        `SELECT count(*) AS n, max(received_at) AS max_received,
                (SELECT max(voided_at) FROM usage_event_voids WHERE occurred_at >= $1 AND occurred_at < $2) AS last_void
           FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2`,
        [window.startMs, window.endMs],
      )
      return { rows: count(r!.n), maxReceivedAt: r!.max_received, lastVoidedAt: r!.last_void }
    },

    async countSelected(s) {
      const r = await one<{ n: number }>(
        pool,
        'SELECT count(*) AS n FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 AND received_at <= $3',
        [s.startMs, s.endMs, s.maxReceivedAt],
      )
      return count(r!.n)
    },

    async deleteSelected(s, limit) {
      const result = await pool.query(
        `DELETE FROM usage_events WHERE request_id IN (
           SELECT request_id FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 AND received_at <= $3 LIMIT $4)`,
        [s.startMs, s.endMs, s.maxReceivedAt, limit],
      )
      return result.rowCount ?? 0
    },

    async *exportDay(selection: DaySelection): AsyncGenerator<ArchiveLine> {
      // A cursor on a connection of its own: the day is never held whole, and the pool serves other calls meanwhile.
      for await (const batch of readWithCursor<Record<string, unknown>>(
        pool,
        `SELECT ${COLUMN_LIST} FROM usage_events WHERE occurred_at >= $1 AND occurred_at < $2 AND received_at <= $3 ORDER BY request_id`,
        [selection.startMs, selection.endMs, selection.maxReceivedAt],
      )) {
        for (const r of batch) yield toLineFromText(r)
      }
    },

    async restore(lines) {
      if (lines.length === 0) return { inserted: 0, voided: 0 }
      return transaction(pool, async (client) => {
        // A record voided after the day was archived stays voided: its line is skipped.
        const inserted = new Set(
          (
            await rows<{ request_id: string }>(
              client,
              `INSERT INTO usage_events (${COLUMN_LIST}) SELECT ${COLUMN_LIST} FROM ${UNNEST_ROWS}
                WHERE NOT EXISTS (SELECT 1 FROM usage_event_voids v WHERE v.request_id = e.request_id)
                ON CONFLICT (request_id) DO NOTHING RETURNING request_id`,
              columnArrays(lines),
            )
          ).map((r) => r.request_id),
        )
        const rest = [...new Set(lines.map((l) => l.request_id))].filter((id) => !inserted.has(id))
        const voided =
          rest.length === 0 ? [] : await rows(client, 'SELECT 1 FROM usage_event_voids WHERE request_id = ANY($1::text[])', [rest])
        return { inserted: inserted.size, voided: voided.length }
      })
    },

    async extent() {
      const r = await one<{ n: number; lo: number | null; hi: number | null }>(pool, 'SELECT count(*) AS n, min(occurred_at) AS lo, max(occurred_at) AS hi FROM usage_events')
      return { rows: count(r!.n), oldestMs: r!.lo, newestMs: r!.hi }
    },

    async countIn(window, estimateBytes) {
      const r = await one<{ n: number; b: number }>(
        pool,
        `SELECT count(*) AS n, ${estimateBytes ? 'coalesce(sum(pg_column_size(u.*)), 0)' : '0'} AS b
           FROM usage_events u WHERE occurred_at >= $1 AND occurred_at < $2`,
        [window.startMs, window.endMs],
      )
      return { rows: count(r!.n), bytes: count(r!.b) }
    },

    // The table, its indexes and its TOAST, as PostgreSQL counts them.
    async tableBytes() {
      const r = await one<{ b: number }>(pool, "SELECT pg_total_relation_size('usage_events') AS b")
      return count(r!.b)
    },

    // Autovacuum makes space freed by deletes reusable by itself; handing it back to the operating
    // system would take VACUUM FULL, which locks the table (docs/postgresql.md#storage-figures-get-batchstorage).
    reclaimFreeSpace: async () => 0,
  }

  const voids: VoidRepository = {
    void: voidAll,
    async list(window: TimeWindow) {
      const found = await rows<StoredVoid>(
        pool,
        `SELECT ${COLUMN_LIST}, reason, voided_at FROM usage_event_voids WHERE occurred_at >= $1 AND occurred_at < $2 ORDER BY occurred_at, request_id`,
        [window.startMs, window.endMs],
      )
      return found.map(fromVoided)
    },
    async requestIdsIn(window: TimeWindow) {
      const found = await rows<{ request_id: string }>(pool, 'SELECT request_id FROM usage_event_voids WHERE occurred_at >= $1 AND occurred_at < $2', [
        window.startMs,
        window.endMs,
      ])
      return new Set(found.map((r) => r.request_id))
    },
  }

  return { rawEvents, voids }
}

/** readWithCursor hands over BIGINTs as pg's default text: converted here, exactly. */
function toLineFromText(r: Record<string, unknown>): ArchiveLine {
  const n = (v: unknown) => count(exactInteger(String(v)))
  return {
    request_id: r.request_id as string,
    client_org_id: r.client_org_id as string,
    model: r.model as string,
    external_user: r.external_user as string,
    input_tokens: n(r.input_tokens),
    output_tokens: n(r.output_tokens),
    total_tokens: n(r.total_tokens),
    cost_nano_usd: n(r.cost_nano_usd),
    occurred_at: n(r.occurred_at),
    received_at: n(r.received_at),
  }
}
