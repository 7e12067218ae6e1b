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
 * Client ids travel as their stored bytes (a BLOB), never as JavaScript text: a row stored by an
 * earlier version with invalid UTF-8 (a lone surrogate) reads back as text with U+FFFD, which
 * neither matches its own rows nor sorts where its bytes do, so a client-by-client read would skip
 * it and every client between its bytes and the U+FFFD spelling. CAST(blob AS TEXT) keeps the
 * bytes, and BINARY collation compares bytes, so clients are read exactly, in index order.
 */

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** external_user, model, input, output, total tokens, cost (nano-USD), records. */
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
 * The day in one grouped scan: the grouped SELECT above (the same plan: a range of the time index,
 * SQLite's sorter for the groups), its groups in client order by the stored bytes (BINARY
 * collation, the order of the client index), so a client's rows are complete once the next
 * client's begin. The ORDER BY costs nothing: the sorter that groups already sorts so.
 */
export const DAY_SCAN_SQL = `
  SELECT CAST(client_org_id AS BLOB), external_user, model,
         SUM(input_tokens), SUM(output_tokens), SUM(total_tokens), SUM(cost_nano_usd), COUNT(*)
  FROM usage_events
  WHERE occurred_at >= @startMs AND occurred_at < @endMs
  GROUP BY client_org_id, external_user, model
  ORDER BY client_org_id, external_user, model`

type Window = { startMs: number; endMs: number }
type ScanRow = [Buffer, string, string, bigint, bigint, bigint, bigint, bigint]

/** A row's user, model and sums from `offset` on (the scan's rows start with the client id). */
function toClientRow(v: readonly unknown[], offset: 0 | 1): GroupSumsTuple {
  return [
    v[offset] as string,
    v[offset + 1] as string,
    safe(v[offset + 2] as bigint),
    safe(v[offset + 3] as bigint),
    safe(v[offset + 4] as bigint),
    v[offset + 5] as bigint,
    safe(v[offset + 6] as bigint),
  ]
}

/**
 * Reads a window's grouped sums client by client on `conn`, from one snapshot (a single read
 * transaction). Synchronous; `onClient` sees every client with records, once, or `onClientError`
 * sees why its sums cannot be read (a client data error, see isClientDataError); any other error
 * ends the read.
 *
 * One grouped scan (DAY_SCAN_SQL) reads the whole day. A sum past 2^53 is seen row by row and fails
 * that client alone. A sum SQLite refuses (integer overflow) ends the scan without saying which
 * group: the rest of the day, from the client being read, is then walked client by client, where
 * each such client fails alone.
 */
export function readDayByClient(
  conn: Database,
  window: Window,
  onClient: (clientOrgId: string, rows: GroupSumsTuple[]) => void,
  onClientError: (clientOrgId: string, message: string) => void,
): void {
  // Ids with invalid UTF-8 read as text with U+FFFD, so two of them may read alike: their rows are
  // gathered by that text and delivered at the end, each name once (the batch sums rows of one
  // user and model). Such rows can only come from before ingest refused ill-formed Unicode.
  const illFormed = new Map<string, GroupSumsTuple[]>()
  const deliver = (key: Buffer, rows: GroupSumsTuple[]) => {
    if (rows.length === 0) return
    const client = decodeStrict(key)
    if (client !== undefined) return onClient(client, rows)
    const name = key.toString('utf8')
    illFormed.set(name, [...(illFormed.get(name) ?? []), ...rows])
  }
  const fail = (key: Buffer, error: unknown) => {
    const name = decodeStrict(key) ?? key.toString('utf8')
    onClientError(name, `${(error as Error).message} in the sums of client ${JSON.stringify(name)}`)
  }
  conn.exec('BEGIN')
  try {
    const scan = conn.prepare(DAY_SCAN_SQL).raw(true).safeIntegers(true)
    let key: Buffer | undefined
    let rows: GroupSumsTuple[] = []
    let failed = false
    let resumeAt: Buffer | null | undefined
    try {
      for (const r of scan.iterate(window) as IterableIterator<ScanRow>) {
        if (key === undefined || !key.equals(r[0])) {
          if (key !== undefined && !failed) deliver(key, rows)
          key = r[0]
          rows = []
          failed = false
        }
        if (failed) continue
        try {
          rows.push(toClientRow(r, 1))
        } catch (error) {
          if (!isClientDataError(error)) throw error
          failed = true
          fail(key, error)
        }
      }
      if (key !== undefined && !failed) deliver(key, rows)
    } catch (error) {
      if (!isIntegerOverflow(error)) throw error
      // The refused group belongs to the client being read or to one after it: walk from there.
      resumeAt = key ?? null
    }
    if (resumeAt !== undefined) walkClients(conn, window, resumeAt, deliver, fail)
  } finally {
    conn.exec('COMMIT')
  }
  for (const [client, rows] of illFormed) onClient(client, rows)
}

function decodeStrict(key: Buffer): string | undefined {
  try {
    return strictUtf8.decode(key)
  } catch {
    return undefined
  }
}

/** One client's grouped sums over a window: a range scan of usage_events_client_occurred_at_idx. */
export const CLIENT_AGGREGATE_SQL = `
  SELECT external_user, model,
         SUM(input_tokens), SUM(output_tokens), SUM(total_tokens), SUM(cost_nano_usd), COUNT(*)
  FROM usage_events
  WHERE client_org_id = CAST(@client AS TEXT) AND occurred_at >= @startMs AND occurred_at < @endMs
  GROUP BY external_user, model`

/** The first client id (in index order) at or after `@from` (its bytes): one index probe, whatever the table's size. */
export const CLIENT_FROM_SQL =
  'SELECT CAST(client_org_id AS BLOB) FROM usage_events WHERE client_org_id >= CAST(@from AS TEXT) ORDER BY client_org_id LIMIT 1'
/** The first client id (in index order) after `@after` (its bytes). */
export const NEXT_CLIENT_SQL =
  'SELECT CAST(client_org_id AS BLOB) FROM usage_events WHERE client_org_id > CAST(@after AS TEXT) ORDER BY client_org_id LIMIT 1'
export const FIRST_CLIENT_SQL = 'SELECT CAST(client_org_id AS BLOB) FROM usage_events ORDER BY client_org_id LIMIT 1'

/**
 * Walks the window client by client from client `from` (its bytes, inclusive; null: the first):
 * one index probe finds each next client, one range scan of (client_org_id, occurred_at) sums it,
 * so a client whose sums cannot be read fails alone.
 */
function walkClients(
  conn: Database,
  window: Window,
  from: Buffer | null,
  deliver: (key: Buffer, rows: GroupSumsTuple[]) => void,
  fail: (key: Buffer, error: unknown) => void,
): void {
  const next = conn.prepare(NEXT_CLIENT_SQL).pluck()
  const sums = conn.prepare(CLIENT_AGGREGATE_SQL).raw(true).safeIntegers(true)
  let key = (from === null ? conn.prepare(FIRST_CLIENT_SQL).pluck().get() : conn.prepare(CLIENT_FROM_SQL).pluck().get({ from })) as Buffer | undefined
  while (key !== undefined) {
    const rows: GroupSumsTuple[] = []
    try {
      for (const r of sums.iterate({ client: key, startMs: window.startMs, endMs: window.endMs }) as IterableIterator<unknown[]>) {
        rows.push(toClientRow(r, 0))
      }
      deliver(key, rows)
    } catch (error) {
      if (!isClientDataError(error)) throw error
      fail(key, error)
    }
    key = next.get({ after: key }) as Buffer | undefined
  }
}

/** True when the window holds at least `limit` records; reads at most `limit` index entries. */
export function windowHasAtLeast(conn: Database, window: { startMs: number; endMs: number }, limit: number): boolean {
  const n = conn
    .prepare('SELECT count(*) FROM (SELECT 1 FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? LIMIT ?)')
    .pluck()
    .get(window.startMs, window.endMs, limit) as number
  return n >= limit
}
