// The embedded store's aggregation SQL, shared by the source and its day reader worker.
// Values are always bound parameters; nothing is interpolated.
import type { Database } from 'better-sqlite3'
import { isIntegerOverflow } from '../db/sqlite/errors.js'

/** Grouped sums over a window (`@startMs`, `@endMs`); the caller appends filters and GROUP_SQL. */
export const AGGREGATE_SQL = `
  SELECT client_org_id, external_user, model,
         SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
         SUM(total_tokens) AS total_tokens, SUM(cost_nano_usd) AS raw_cost_nano_usd, COUNT(*) AS total_requests
  FROM usage_events
  WHERE occurred_at >= @startMs AND occurred_at < @endMs`
export const GROUP_SQL = ' GROUP BY client_org_id, external_user, model'

/*
 * The client walk carries each client id as its stored bytes (a BLOB), never as JavaScript text: a
 * row stored by an earlier version with invalid UTF-8 (a lone surrogate) reads back as text with
 * U+FFFD, which neither matches its own rows nor sorts where its bytes do, so the walk would have
 * skipped it and every client between its bytes and the U+FFFD spelling. CAST(blob AS TEXT) keeps
 * the bytes, and BINARY collation compares bytes, so the index is walked exactly.
 */

/** One client's grouped sums over a window: a range scan of usage_events_client_occurred_at_idx. */
export const CLIENT_AGGREGATE_SQL = `
  SELECT external_user, model,
         SUM(input_tokens), SUM(output_tokens), SUM(total_tokens), SUM(cost_nano_usd), COUNT(*)
  FROM usage_events
  WHERE client_org_id = CAST(@client AS TEXT) AND occurred_at >= @startMs AND occurred_at < @endMs
  GROUP BY external_user, model`

/** The first client id (in index order) after `@after` (its bytes): one index probe, whatever the table's size. */
export const NEXT_CLIENT_SQL =
  'SELECT CAST(client_org_id AS BLOB) FROM usage_events WHERE client_org_id > CAST(@after AS TEXT) ORDER BY client_org_id LIMIT 1'
export const FIRST_CLIENT_SQL = 'SELECT CAST(client_org_id AS BLOB) FROM usage_events ORDER BY client_org_id LIMIT 1'

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** One (user, model) group of a client's sums: external_user, model, input, output, total tokens, cost (nano-USD), records. */
export type GroupSumsTuple = [string, string, number, number, number, bigint, number]

/** An exact SQLite count or token sum (read as bigint) as a number; refuses what a double cannot hold exactly. */
export function safe(n: bigint): number {
  const v = Number(n)
  if (!Number.isSafeInteger(v)) throw new RangeError(`aggregate exceeds 2^53: ${n}`)
  return v
}

/**
 * An error of one client's data rather than of the store: SQLite's 64-bit SUM overflowing, or a
 * token sum past 2^53. Reading that client again gives the same error; other clients are fine.
 */
export function isClientDataError(error: unknown): boolean {
  return error instanceof RangeError || isIntegerOverflow(error)
}

/**
 * Walks a window client by client on `conn`: clients in index order (one index probe each), each
 * client's sums from a range scan of (client_org_id, occurred_at). Together the same rows as the one
 * grouped query, read from one snapshot (a single read transaction). Synchronous; `onClient` sees
 * every client with records, once, or `onClientError` sees why its sums cannot be read (a client
 * data error, see isClientDataError); any other error ends the walk.
 */
export function walkDayByClient(
  conn: Database,
  window: { startMs: number; endMs: number },
  onClient: (clientOrgId: string, rows: GroupSumsTuple[]) => void,
  onClientError: (clientOrgId: string, message: string) => void,
): void {
  const first = conn.prepare(FIRST_CLIENT_SQL).pluck()
  const next = conn.prepare(NEXT_CLIENT_SQL).pluck()
  const sums = conn.prepare(CLIENT_AGGREGATE_SQL).raw(true).safeIntegers(true)
  // Ids with invalid UTF-8 read as text with U+FFFD, so two of them may read alike: their rows are
  // gathered by that text and delivered after the walk, each name once (the batch sums rows of one
  // user and model). Such rows can only come from before ingest refused ill-formed Unicode.
  const illFormed = new Map<string, GroupSumsTuple[]>()
  conn.exec('BEGIN')
  try {
    let key = first.get() as Buffer | undefined
    while (key !== undefined) {
      const rows: GroupSumsTuple[] = []
      const params = { client: key, startMs: window.startMs, endMs: window.endMs }
      let client: string | undefined
      try {
        client = strictUtf8.decode(key)
      } catch {
        client = undefined
      }
      try {
        for (const r of sums.iterate(params) as IterableIterator<[string, string, bigint, bigint, bigint, bigint, bigint]>) {
          rows.push([r[0], r[1], safe(r[2]), safe(r[3]), safe(r[4]), r[5], safe(r[6])])
        }
        if (rows.length > 0) {
          if (client !== undefined) onClient(client, rows)
          else {
            const name = key.toString('utf8')
            illFormed.set(name, [...(illFormed.get(name) ?? []), ...rows])
          }
        }
      } catch (error) {
        if (!isClientDataError(error)) throw error
        const name = client ?? key.toString('utf8')
        onClientError(name, `${(error as Error).message} in the sums of client ${JSON.stringify(name)}`)
      }
      key = next.get({ after: key }) as Buffer | undefined
    }
  } finally {
    conn.exec('COMMIT')
  }
  for (const [client, rows] of illFormed) onClient(client, rows)
}

/** True when the window holds at least `limit` records; reads at most `limit` index entries. */
export function windowHasAtLeast(conn: Database, window: { startMs: number; endMs: number }, limit: number): boolean {
  const n = conn
    .prepare('SELECT count(*) FROM (SELECT 1 FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? LIMIT ?)')
    .pluck()
    .get(window.startMs, window.endMs, limit) as number
  return n >= limit
}
