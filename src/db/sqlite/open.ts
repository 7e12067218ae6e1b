// Opening the SQLite file: pragmas, then migrations, before anything else touches it; and the one
// way to open a second, read-only connection on it.
import Database from 'better-sqlite3'
import { drizzle, migrate, type BetterSQLite3Database } from '../drizzle.js'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import * as schema from '../schema.js'
import { systemClock, type Clock } from '../../clock.js'
import { expectedMigrationCount, migrationsFolder } from '../migrations.js'
import { recordDatabaseCreated } from './metadata.js'
import { openSqliteReader, BUSY_TIMEOUT_MS, writerPragmas } from './reader.js'

export { openSqliteReader }

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database }

export interface OpenDbOptions {
  /** File path, or ':memory:'. */
  path: string
  /** Apply pending migrations (default true). */
  migrate?: boolean
  /** Open without writing anything (no pragmas that write, no migrations): a file that must exist. */
  readonly?: boolean
  /** Stamps the database's creation (database_metadata) on its first open; the system clock otherwise. */
  clock?: Clock
}

export function openDb(options: OpenDbOptions): Db {
  if (options.readonly) return drizzle({ client: openSqliteReader(options.path), schema }) as Db
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true })
  const client = new Database(options.path)
  try {
    client.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    // Lets retention hand freed pages back to the OS in small steps (PRAGMA incremental_vacuum).
    // It only takes effect on a file that has no tables yet, and must come before journal_mode:
    // switching to WAL first writes the header and fixes the mode. On an existing file it is a
    // no-op; see docs/operations.md#disk-space for the one-off VACUUM that converts such a file.
    client.pragma('auto_vacuum = INCREMENTAL')
    client.pragma('journal_mode = WAL')
    writerPragmas(client)
    const db = drizzle({ client, schema }) as Db
    if (options.migrate !== false) {
      migrate(db, { migrationsFolder: migrationsFolder() })
      recordDatabaseCreated(db, (options.clock ?? systemClock).now())
    }
    return db
  } catch (e) {
    client.close()
    throw new Error(`cannot open SQLite database at ${options.path}: ${(e as Error).message}`, { cause: e })
  }
}

/** True when every migration in drizzle/ is recorded as applied in this database. */
export function migrationsApplied(db: Db): boolean {
  const journal = db.$client
    .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'")
    .get() as { n: number }
  if (journal.n === 0) return false
  const applied = db.$client.prepare('SELECT count(*) AS n FROM __drizzle_migrations').get() as { n: number }
  return applied.n >= expectedMigrationCount(migrationsFolder())
}
