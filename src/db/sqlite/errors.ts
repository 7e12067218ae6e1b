// Telling SQLite errors apart: the store failing, or one computation it refuses. No imports, so the
// day reader's worker thread loads it without the rest of the database layer.

/**
 * SQLite errors that say the database itself cannot be used now (full, I/O, busy or locked,
 * read-only, corrupt, out of memory): not one client's fault, so they fail the whole day. Every
 * other error while staging a client (a constraint, a value out of range) is that client's.
 */
const STORE_FAILURE_CODE = /^SQLITE_(FULL|IOERR|NOMEM|BUSY|LOCKED|READONLY|CORRUPT|CANTOPEN|NOTADB|PERM|INTERRUPT|ABORT|PROTOCOL|NOLFS|AUTH)/

export function isStoreFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && STORE_FAILURE_CODE.test(code)
}

/** SQLite refusing to wrap a 64-bit integer sum (SUM over integers raises rather than overflow). */
export function isIntegerOverflow(error: unknown): boolean {
  return error instanceof Error && (error as { code?: string }).code === 'SQLITE_ERROR' && error.message === 'integer overflow'
}
