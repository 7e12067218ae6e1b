// The product as it ships: the compiled modules in dist/src (bench/run.ts compiles them, with the
// bench, first), run by plain Node as `npm start` and the image run them. Measured from the
// TypeScript sources instead, every worker thread the product starts would load tsx's loader first
// (~100 ms a batch day here) — a cost of development, not of the service.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT_DIR } from './child.js'

export const DIST_DIR = join(ROOT_DIR, 'dist')

async function load<M>(module: string): Promise<M> {
  const file = join(DIST_DIR, 'src', module)
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (npm run bench does)`)
  return (await import(pathToFileURL(file).href)) as M
}

export const { buildApp, serverOptions } = await load<typeof import('../../src/app.js')>('app.js')
export const { loadConfig } = await load<typeof import('../../src/config.js')>('config.js')
export const { openDb } = await load<typeof import('../../src/db/sqlite/open.js')>('db/sqlite/open.js')
export const { openSqliteStore } = await load<typeof import('../../src/db/sqlite/store.js')>('db/sqlite/store.js')
export const { INSERT_EVENT_SQL } = await load<typeof import('../../src/db/sqlite/ingest.js')>('db/sqlite/ingest.js')
export const { createServices } = await load<typeof import('../../src/services.js')>('services.js')
export const { createSqliteSource, AGGREGATE_SQL, GROUP_SQL } = await load<typeof import('../../src/sources/sqlite.js')>('sources/sqlite.js')
export const { createBatchService } = await load<typeof import('../../src/batch/service.js')>('batch/service.js')
// PostgreSQL (DATABASE_URL): the store, the raw source and the exact statements they run, which the
// PostgreSQL part measures alone as its limits.
export const { openPostgres } = await load<typeof import('../../src/db/postgres/open.js')>('db/postgres/open.js')
export const { openPostgresStore } = await load<typeof import('../../src/db/postgres/store.js')>('db/postgres/store.js')
export const { readWithCursor } = await load<typeof import('../../src/db/postgres/cursor.js')>('db/postgres/cursor.js')
export const {
  createPostgresSource,
  BY_CLIENT_SQL: PG_BY_CLIENT_SQL,
  INGEST_SQL: PG_INGEST_SQL,
  ingestParameters: pgIngestParameters,
} = await load<typeof import('../../src/sources/postgres.js')>('sources/postgres.js')
