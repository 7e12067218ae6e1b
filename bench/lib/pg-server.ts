// The PostgreSQL part's server: the tests' throwaway PostgreSQL 15 (test/helpers/postgres.ts: initdb
// in a temp folder, a free loopback port, gone when this process ends), one database migrated by the
// product, and copies of it: CREATE DATABASE … TEMPLATE copies files, so a loaded day is copied in
// seconds where loading it again would take a minute.
import pg from 'pg'
import { openPostgres } from '../../src/db/postgres/open.js'
import { launchPostgres, postgresUnavailable, type PostgresServer } from '../../test/helpers/postgres.js'

export interface BenchPostgres {
  server: PostgresServer
  /** A new database copied from `template` (default: the empty, migrated one); its URL. */
  create(name: string, template?: string): Promise<string>
  drop(name: string): Promise<void>
  destroy(): Promise<void>
}

const MIGRATED = 'bench_migrated'

// Why PostgreSQL cannot run here (the part is then skipped), or undefined; throws under REQUIRE_POSTGRES=1 (CI).
export { postgresUnavailable }

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const server = await launchPostgres()
  try {
    await server.admin(`CREATE DATABASE ${MIGRATED} TEMPLATE template0`)
    const db = await openPostgres({ url: server.urlFor(MIGRATED) })
    await db.$client.end()
  } catch (e) {
    await server.destroy()
    throw e
  }
  const drop = async (name: string) => {
    await server.admin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
  }
  return {
    server,
    async create(name, template = MIGRATED) {
      await drop(name)
      await server.admin(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}`)
      return server.urlFor(name)
    },
    drop,
    destroy: () => server.destroy(),
  }
}
