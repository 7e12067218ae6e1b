// The embedded raw store on PostgreSQL (DATABASE_URL): `usage_events` in the shared database.
// The same contract as sources/sqlite.ts: aggregations are read here; records are written and voided
// through the store's raw-events repository (db/postgres/raw-events.ts), which holds the ingest and
// void rules. Values are always bound parameters, never interpolated.
import type { Clock } from '../clock.js'
import { readWithCursor } from '../db/postgres/cursor.js'
import type { PostgresStore } from '../db/postgres/store.js'
import { conflictError } from '../errors.js'
import { nanoFromSql } from '../money.js'
import { safe } from './sqlite-sql.js'
import type { AggregateOptions, AggregateRow, ClientAggregate, IngestResult, SourceHealth, UsageSource } from './types.js'
import type { UsageEvent } from '../usage-event.js'

/**
 * What POST /usage/events runs here, for the benchmark: `ingestEvents` is the route's whole ingest
 * (one transaction with the conflict and void checks); INGEST_SQL with `ingestParameters` is its
 * insert alone.
 */
export { INGEST_SQL, ingestEvents, ingestParameters } from '../db/postgres/raw-events.js'

export interface PostgresSourceOptions {
  store: PostgresStore
  clock: Clock
  /** Aggregate rows per cursor round trip (default 1,000). */
  cursorRows?: number
}

/**
 * Grouped sums over [$1, $2). SUM over BIGINT is NUMERIC in PostgreSQL: exact at any size, and
 * handed over as decimal text, so cost reaches bigint without passing through a double.
 */
export const AGGREGATE_SQL = `
  SELECT client_org_id, external_user, model,
         SUM(input_tokens)::text AS input_tokens, SUM(output_tokens)::text AS output_tokens,
         SUM(total_tokens)::text AS total_tokens, SUM(cost_nano_usd)::text AS cost_nano_usd, COUNT(*)::text AS records
  FROM usage_events
  WHERE occurred_at >= $1 AND occurred_at < $2`
export const GROUP_SQL = ' GROUP BY client_org_id, external_user, model'
/**
 * Client by client: the same groups, ordered so each client's rows arrive together (text is bytewise,
 * "C"). The batch day reads this; the benchmark measures it alone as the day's read limit.
 */
export const BY_CLIENT_SQL = `${AGGREGATE_SQL}${GROUP_SQL} ORDER BY client_org_id`

interface RawAggregate {
  client_org_id: string
  external_user: string
  model: string
  input_tokens: string
  output_tokens: string
  total_tokens: string
  cost_nano_usd: string
  records: string
}

function toRow(r: RawAggregate): AggregateRow {
  return {
    client_org_id: r.client_org_id,
    external_user: r.external_user,
    model: r.model,
    input_tokens: safe(BigInt(r.input_tokens)),
    output_tokens: safe(BigInt(r.output_tokens)),
    total_tokens: safe(BigInt(r.total_tokens)),
    raw_cost_nano_usd: nanoFromSql(r.cost_nano_usd),
    total_requests: safe(BigInt(r.records)),
  }
}

export function createPostgresSource(options: PostgresSourceOptions): UsageSource {
  const { store, clock } = options
  const pool = store.db.$client
  const cursorRows = options.cursorRows

  return {
    // The service's own usage_events table, in PostgreSQL (docs/postgresql.md#what-the-api-says).
    dataSource: 'postgresql',
    dialect: 'postgresql',

    async *aggregate(window, aggregateOptions: AggregateOptions = {}) {
      const params: unknown[] = [window.startMs, window.endMs]
      let text = AGGREGATE_SQL
      if (aggregateOptions.clientOrgId !== undefined) {
        params.push(aggregateOptions.clientOrgId)
        text += ' AND client_org_id = $3'
      }
      text += GROUP_SQL
      for await (const batch of readWithCursor<RawAggregate>(pool, text, params, { batchRows: cursorRows, signal: aggregateOptions.signal })) {
        for (const r of batch) yield toRow(r)
      }
    },

    async *aggregateClients(window, signal): AsyncGenerator<ClientAggregate> {
      let current: { client_org_id: string; rows: AggregateRow[] } | undefined
      for await (const batch of readWithCursor<RawAggregate>(pool, BY_CLIENT_SQL, [window.startMs, window.endMs], { batchRows: cursorRows, signal })) {
        for (const r of batch) {
          if (current && current.client_org_id !== r.client_org_id) {
            yield current
            current = undefined
          }
          current ??= { client_org_id: r.client_org_id, rows: [] }
          current.rows.push(toRow(r))
        }
      }
      if (current) yield current
    },

    // One transaction per request, refused whole on a conflict (docs/postgresql.md#the-replica-model).
    async ingest(events: UsageEvent[]): Promise<IngestResult> {
      const { accepted, conflicts } = await store.rawEvents.ingest(events, clock.now())
      if (conflicts.length > 0) throw conflictError(conflicts)
      return { accepted, duplicates: events.length - accepted }
    },

    voidEvents: (requestIds, reason, nowMs) => store.voids.void(requestIds, reason, nowMs),

    listVoids: (window) => store.voids.list(window),

    async check(): Promise<SourceHealth> {
      const started = performance.now()
      await pool.query('SELECT 1')
      return { status: 'up', detail: { latency_ms: Math.round((performance.now() - started) * 1000) / 1000 } }
    },

    // The pool belongs to whoever opened the database (the summaries share it).
    async close() {},
  }
}
