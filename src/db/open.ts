// Opening the SQLite file: pragmas, then migrations, before anything else touches it.
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as schema from './schema.js'
import { systemClock, type Clock } from '../clock.js'
import { recordDatabaseCreated } from './metadata.js'

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database }

export interface OpenDbOptions {
  /** File path, or ':memory:'. */
  path: string
  /** Apply pending migrations (default true). */
  migrate?: boolean
  readonly?: boolean
  busyTimeoutMs?: number
  /** Stamps the database's creation (database_metadata) on its first open; the system clock otherwise. */
  clock?: Clock
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000

/** The folder holding generated migrations, found from this module whether run from src or dist. */
export function migrationsFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'drizzle', 'meta', '_journal.json'))) {
      return join(dir, 'drizzle')
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error('drizzle/ migrations folder not found above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
}

export function openDb(options: OpenDbOptions): Db {
  if (options.path !== ':memory:' && !options.readonly) mkdirSync(dirname(options.path), { recursive: true })
  const client = new Database(options.path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false })
  try {
    client.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`)
    if (!options.readonly) {
      // Lets retention hand freed pages back to the OS in small steps (PRAGMA incremental_vacuum).
      // It only takes effect on a file that has no tables yet, and must come before journal_mode:
      // switching to WAL first writes the header and fixes the mode. On an existing file it is a
      // no-op; see the README (data lifecycle) for the one-off VACUUM that converts such a file.
      client.pragma('auto_vacuum = INCREMENTAL')
      client.pragma('journal_mode = WAL')
      // WAL makes NORMAL durable against process crashes; only an OS crash can lose the last commit.
      client.pragma('synchronous = NORMAL')
    }
    client.pragma('foreign_keys = ON')
    const db = drizzle({ client, schema }) as Db
    if (options.migrate !== false && !options.readonly) {
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
  return applied.n >= expectedMigrationCount()
}

let cachedMigrationCount: number | undefined
function expectedMigrationCount(): number {
  if (cachedMigrationCount === undefined) {
    const journal = JSON.parse(readJournal()) as { entries: unknown[] }
    cachedMigrationCount = journal.entries.length
  }
  return cachedMigrationCount
}

function readJournal(): string {
  return readFileSync(join(migrationsFolder(), 'meta', '_journal.json'), 'utf8')
}
