// Second connections on the SQLite file. Read-only ones: long reads (a day's aggregation, an archive
// export) run on one of these so the writer connection is never held busy, and WAL lets both proceed
// at once. The ingest writer's (ingest-writer.ts), which stores large ingests off the event loop.
// Imports nothing of the service: the worker threads load it.
import Database from 'better-sqlite3'

/** How long a statement waits for another connection's lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000

export function openSqliteReader(path: string): Database.Database {
  const conn = new Database(path, { readonly: true, fileMustExist: true })
  conn.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
  return conn
}

/**
 * The per-connection settings every connection that writes takes (open.ts, the ingest writer).
 * WAL makes NORMAL durable against process crashes; only an OS crash can lose the last commit.
 */
export function writerPragmas(conn: Database.Database): void {
  conn.pragma('synchronous = NORMAL')
  conn.pragma('foreign_keys = ON')
}

/** A second writing connection on an existing, migrated file, waiting up to `busyTimeoutMs` for the write lock. */
export function openSqliteWriter(path: string, busyTimeoutMs: number): Database.Database {
  const conn = new Database(path, { fileMustExist: true })
  conn.pragma(`busy_timeout = ${busyTimeoutMs}`)
  writerPragmas(conn)
  return conn
}
