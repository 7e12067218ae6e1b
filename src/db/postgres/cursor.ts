// Reads too large to hold: a server-side cursor (DECLARE … FETCH) in a read-only transaction on a
// pooled connection held for the whole read, handing rows on one batch at a time.
import type pg from 'pg'

export interface CursorReadOptions {
  /** Rows per FETCH round trip (default 1,000). */
  batchRows?: number
  signal?: AbortSignal
}

const DEFAULT_BATCH_ROWS = 1_000

/**
 * Yields the rows of `text` (parameters `$1…` from `params`) in batches, never holding more than one.
 * Leaving the loop early, a failed query or an aborted signal ends the transaction and gives the
 * connection back (or discards it when it broke). One statement sees one snapshot, so the rows are
 * consistent with each other however long the read takes.
 */
export async function* readWithCursor<Row extends pg.QueryResultRow>(
  pool: pg.Pool,
  text: string,
  params: unknown[],
  options: CursorReadOptions = {},
): AsyncGenerator<Row[]> {
  const batchRows = options.batchRows ?? DEFAULT_BATCH_ROWS
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new RangeError(`batchRows must be a positive integer: ${batchRows}`)
  options.signal?.throwIfAborted()
  // A pool from openPostgres: its clients carry an error listener, so a connection lost between
  // two FETCHes fails the read instead of crashing the process, and release drops the broken client.
  const client = await pool.connect()
  let open = false
  try {
    await client.query('BEGIN READ ONLY')
    open = true
    await client.query(`DECLARE usage_cursor NO SCROLL CURSOR FOR ${text}`, params)
    for (;;) {
      options.signal?.throwIfAborted()
      const { rows } = await client.query<Row>(`FETCH FORWARD ${batchRows} FROM usage_cursor`)
      if (rows.length === 0) break
      yield rows
      if (rows.length < batchRows) break
    }
  } finally {
    // Ending the transaction closes the cursor. On a broken connection this fails too; release discards it.
    if (open) await client.query('ROLLBACK').catch(() => {})
    client.release()
  }
}
