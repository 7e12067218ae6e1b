// The one way to open a read-only connection on the SQLite file: long reads (a day's aggregation,
// an archive export) run on one of these so the writer connection is never held busy, and WAL lets
// both proceed at once. Imports nothing of the service: the day reader's worker thread loads it.
import Database from 'better-sqlite3'

/** How long a statement waits for another connection's lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000

export function openSqliteReader(path: string): Database.Database {
  const conn = new Database(path, { readonly: true, fileMustExist: true })
  conn.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
  return conn
}
