// The embedded raw store on PostgreSQL (DATABASE_URL): `usage_events` in the shared database.
// The same contract as sources/sqlite.ts; values are always bound parameters, never interpolated.
import type { Clock } from '../clock.js'
import type { PgDb } from '../db/postgres/open.js'
import { readWithCursor } from '../db/postgres/cursor.js'
import { nanoFromSql } from '../money.js'
import { safe } from './sqlite-sql.js'
import type { AggregateOptions, AggregateRow, ClientAggregate, IngestResult, SourceHealth, UsageSource } from './types.js'
import type { UsageEvent } from '../usage-event.js'

export interface PostgresSourceOptions {
  db: PgDb
  clock: Clock
  /** Aggregate rows per cursor round trip (default 1,000). */
  cursorRows?: number
}

/**
 * One statement per ingest request: all of it or nothing. The events travel as ten arrays (one
 * parameter per column, whatever the number of events), several times faster than a VALUES list
 * with ten parameters per event (docs/postgresql.md#the-driver-pg-node-postgres). ON CONFLICT DO NOTHING also skips a
 * request_id repeated within the request, so accepted = rows inserted, the rest are duplicates.
 */
export const INGEST_SQL = `
  INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens,
                            total_tokens, cost_nano_usd, occurred_at, received_at)
  SELECT request_id, client_org_id, model, external_user, input_tokens, output_tokens,
         total_tokens, cost_nano_usd, occurred_at, $10::bigint
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
       AS e(request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens, cost_nano_usd, occurred_at)
  ON CONFLICT (request_id) DO NOTHING`

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

/** INGEST_SQL's parameters: one array per column, then the time of receipt. */
export function ingestParameters(events: readonly UsageEvent[], receivedAtMs: number): unknown[] {
  const columns: unknown[][] = [[], [], [], [], [], [], [], [], []]
  for (const e of events) {
    columns[0]!.push(e.request_id)
    columns[1]!.push(e.client_org_id)
    columns[2]!.push(e.model)
    columns[3]!.push(e.external_user)
    columns[4]!.push(e.input_tokens)
    columns[5]!.push(e.output_tokens)
    columns[6]!.push(e.total_tokens)
    columns[7]!.push(e.cost_nano_usd.toString())
    columns[8]!.push(e.occurred_at_ms)
  }
  return [...columns, receivedAtMs]
}

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
  const { clock } = options
  const pool = options.db.$client
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

    async ingest(events: UsageEvent[]): Promise<IngestResult> {
      if (events.length === 0) return { accepted: 0, duplicates: 0 }
      const result = await pool.query(INGEST_SQL, ingestParameters(events, clock.now()))
      const inserted = result.rowCount ?? 0
      return { accepted: inserted, duplicates: events.length - inserted }
    },

    async check(): Promise<SourceHealth> {
      const started = performance.now()
      await pool.query('SELECT 1')
      return { status: 'up', detail: { latency_ms: Math.round((performance.now() - started) * 1000) / 1000 } }
    },

    // The pool belongs to whoever opened the database (the summaries share it).
    async close() {},
  }
}
