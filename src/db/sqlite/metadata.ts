// The database's own facts (`database_metadata`). `created_at` bounds what the service can be
// expected to have done: a day that fell due before the database existed is history, not a day the
// service fell behind on (src/scheduler/due.ts).
import type { Db } from './open.js'

const CREATED_AT = 'created_at'
const CREATED_FROM = 'created_at_from'

/** How `created_at` was established: a new file, or a file older than this record (upgraded). */
export type CreatedFrom = 'new_database' | 'first_run_in_ledger' | 'first_open_after_upgrade'

/**
 * Records when the database came to be, once; later calls change nothing. A file that predates the
 * record (an upgrade) already holds runs: its first run's start is the best known lower bound, so
 * the service is not told it fell behind on days it already handled, nor excused for days it did not.
 */
export function recordDatabaseCreated(db: Db, nowMs: number): void {
  const client = db.$client
  const existing = client.prepare('SELECT value FROM database_metadata WHERE key = ?').pluck().get(CREATED_AT)
  if (existing !== undefined) return
  const firstRun = client.prepare('SELECT min(started_at) FROM influxdb_batch_runs').pluck().get() as string | null
  const firstRunMs = firstRun === null ? NaN : Date.parse(firstRun)
  const hasData =
    firstRun !== null || (client.prepare('SELECT EXISTS (SELECT 1 FROM usage_events) OR EXISTS (SELECT 1 FROM client_daily_usage)').pluck().get() as number) === 1
  let createdMs = nowMs
  let from: CreatedFrom = 'new_database'
  if (Number.isFinite(firstRunMs) && firstRunMs < nowMs) {
    createdMs = firstRunMs
    from = 'first_run_in_ledger'
  } else if (hasData) {
    from = 'first_open_after_upgrade'
  }
  const insert = client.prepare('INSERT OR IGNORE INTO database_metadata (key, value) VALUES (?, ?)')
  client.transaction(() => {
    insert.run(CREATED_AT, new Date(createdMs).toISOString())
    insert.run(CREATED_FROM, from)
  })()
}

/** When the database came to be (epoch ms), or null on a file opened without migrations. */
export function databaseCreatedAt(db: Db): number | null {
  try {
    const value = db.$client.prepare('SELECT value FROM database_metadata WHERE key = ?').pluck().get(CREATED_AT) as string | undefined
    if (value === undefined) return null
    const ms = Date.parse(value)
    return Number.isFinite(ms) ? ms : null
  } catch {
    // No such table: a file whose migrations were never applied (readiness reports that).
    return null
  }
}
