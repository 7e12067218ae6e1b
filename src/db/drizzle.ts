// drizzle-orm, loaded through its CommonJS build. Node 24's ESM resolver deserialises a package's
// `exports` map afresh for every module it resolves inside the package; drizzle-orm's package.json
// is 179 KB of subpaths and the SQLite store loads ~200 of its modules, so importing it as ESM
// allocated ~200 MB of short-lived garbage at start-up, which V8 keeps as heap (the service's peak
// RSS was ~280 MB before any work). Its CommonJS build (same version, same classes) loads in about
// 20 MB (docs/operations.md#memory). Types are the package's own; only the loading differs.
// Every module of the service takes drizzle from here (SQLite) or ./postgres/drizzle.ts.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export type { SQL } from 'drizzle-orm'
export type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'

export const { and, asc, desc, eq, getTableColumns, gt, gte, inArray, lt, lte, ne, sql } = require('drizzle-orm') as typeof import('drizzle-orm')
export const { index, integer, sqliteTable, text, uniqueIndex } = require('drizzle-orm/sqlite-core') as typeof import('drizzle-orm/sqlite-core')
export const { drizzle } = require('drizzle-orm/better-sqlite3') as typeof import('drizzle-orm/better-sqlite3')
export const { migrate } = require('drizzle-orm/better-sqlite3/migrator') as typeof import('drizzle-orm/better-sqlite3/migrator')
