// drizzle-orm's PostgreSQL modules, through its CommonJS build like the rest (../drizzle.ts says why).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export type { NodePgDatabase } from 'drizzle-orm/node-postgres'

export const { bigint, customType, index, pgTable, uniqueIndex } = require('drizzle-orm/pg-core') as typeof import('drizzle-orm/pg-core')
export const { drizzle } = require('drizzle-orm/node-postgres') as typeof import('drizzle-orm/node-postgres')
export const { migrate } = require('drizzle-orm/node-postgres/migrator') as typeof import('drizzle-orm/node-postgres/migrator')
