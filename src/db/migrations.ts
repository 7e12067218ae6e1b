// Where the generated migrations live (drizzle/ for SQLite, drizzle/postgres/ for PostgreSQL), and
// how many each engine expects, found from this module whether it runs from src or from dist.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The folder holding generated migrations. */
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

const counts = new Map<string, number>()

/** How many migrations the journal of `folder` lists (read once). */
export function expectedMigrationCount(folder: string): number {
  let n = counts.get(folder)
  if (n === undefined) {
    const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }
    n = journal.entries.length
    counts.set(folder, n)
  }
  return n
}
