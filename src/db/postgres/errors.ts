// Telling PostgreSQL errors apart: the store failing (it fails the whole day), or one client's data
// that a statement refused (that client alone fails). Every statement of the store is ours, so a
// server error outside data exceptions (class 22) and integrity violations (class 23) says the
// database cannot be used as it is now: unreachable, shutting down, full, read-only, not migrated.
import pg from 'pg'

/** SQLSTATE classes that are the store's, not a client's (https://www.postgresql.org/docs/15/errcodes-appendix.html). */
const STORE_FAILURE_CLASSES = new Set([
  '08', // connection exception
  '25', // invalid transaction state (25006: read-only transaction, a standby)
  '28', // invalid authorization
  '3D', // invalid catalog name (the database is gone)
  '40', // transaction rollback (serialization failure, deadlock)
  '42', // undefined table or column, insufficient privilege: the schema is not what the service migrated
  '53', // insufficient resources (disk full, out of memory, too many connections)
  '55', // object not in prerequisite state (lock not available)
  '57', // operator intervention (admin shutdown, crash shutdown, cannot connect now, statement timeout)
  '58', // system error (I/O)
  'F0', // configuration file error
  'XX', // internal error (data corrupted)
])

/** Node's errors for a connection that cannot be made or was cut. */
const SOCKET_ERRORS = /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ENETDOWN|EAI_AGAIN|EADDRNOTAVAIL)$/

/** pg's own errors (no code) for a connection lost, closed, or never obtained. */
const DRIVER_CONNECTION_ERRORS =
  /Connection terminated|not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end|connection error|Query read timeout/i

export function isPostgresStoreFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (error instanceof pg.DatabaseError) return typeof code === 'string' && STORE_FAILURE_CLASSES.has(code.slice(0, 2))
  if (typeof code === 'string' && SOCKET_ERRORS.test(code)) return true
  return DRIVER_CONNECTION_ERRORS.test(error.message)
}
