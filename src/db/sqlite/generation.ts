// The store's write generation on SQLite (Store.generation in ../store.ts): one row of
// database_metadata, incremented inside the very transaction of each write that can change what the
// summary reads answer (a day's summaries replaced, a rate saved, a markup appended, records
// voided), by whichever connection or process writes through the store. Raw ingests leave it
// alone, the ingest writer's connection included, so cached answers outlive them: raw records
// change no summary until a batch run writes it, and that run moves the generation.
// The same row as the PostgreSQL store's (../postgres/sql.ts).
import type Database from 'better-sqlite3'
import { GENERATION_KEY } from '../store.js'

export interface SqliteGeneration {
  /** Increments the generation: call inside the write's own transaction. */
  bump(): void
  /** The generation as committed now ('0' before the first counted write). */
  read(): string
}

/** Statements prepared on first use: a store opened without migrations has no table yet. */
export function sqliteGeneration(conn: Database.Database): SqliteGeneration {
  let bump: Database.Statement | undefined
  let read: Database.Statement | undefined
  return {
    bump() {
      bump ??= conn.prepare(
        `INSERT INTO database_metadata (key, value) VALUES ('${GENERATION_KEY}', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`,
      )
      bump.run()
    },
    read() {
      read ??= conn.prepare(`SELECT value FROM database_metadata WHERE key = '${GENERATION_KEY}'`).pluck()
      return (read.get() as string | undefined) ?? '0'
    },
  }
}
