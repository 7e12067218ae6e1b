// The ledger of days whose raw rows retention archived or removed (`raw_archives`).
import { asc, eq } from '../drizzle.js'
import type { Db } from './open.js'
import { rawArchives, type RawArchiveRow } from '../schema.js'
import type { ArchiveRecordInput } from '../store.js'

export function getArchive(db: Db, date: string): RawArchiveRow | undefined {
  return db.select().from(rawArchives).where(eq(rawArchives.usage_date, date)).get()
}

export function listArchives(db: Db): RawArchiveRow[] {
  return db.select().from(rawArchives).orderBy(asc(rawArchives.usage_date)).all()
}

/** Records (or replaces) the archive file of a day. */
export function recordArchive(
  db: Db,
  input: ArchiveRecordInput,
): void {
  const values = {
    file_name: input.fileName,
    row_count: input.rows,
    bytes: input.bytes,
    sha256: input.sha256,
    archived_at: input.fileName === null ? null : input.at,
  }
  db.insert(rawArchives)
    .values({ usage_date: input.date, ...values })
    .onConflictDoUpdate({ target: rawArchives.usage_date, set: values })
    .run()
}

export function markPurged(db: Db, date: string, at: string): void {
  db.update(rawArchives).set({ purged_at: at }).where(eq(rawArchives.usage_date, date)).run()
}

export function markRestored(db: Db, date: string, at: string): void {
  // A restored day holds its raw rows again: it is no longer purged until retention removes them anew.
  db.update(rawArchives).set({ restored_at: at, purged_at: null }).where(eq(rawArchives.usage_date, date)).run()
}

/**
 * True when retention removed the day's raw rows and no restore followed: a rerun would see only
 * records that arrived afterwards and replace the day's billed summaries with them.
 */
export function isRawPurged(db: Db, date: string): boolean {
  return Boolean(getArchive(db, date)?.purged_at)
}
