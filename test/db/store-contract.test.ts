// The store contract (test/helpers/store-contract.ts) against both stores: SQLite on a real file,
// PostgreSQL on a real server. One suite, two stores: the same calls must give the same answers.
import t from 'tap'
import pg from 'pg'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openPostgresStore, type PostgresStore } from '../../src/db/postgres/store.js'
import { openSqliteStore, type SqliteStore } from '../../src/db/sqlite/store.js'
import { createMigratedDatabase, postgresUnavailable, sharedPostgres } from '../helpers/postgres.js'
import { runStoreContract } from '../helpers/store-contract.js'

const STAMP_SQL = `
  SELECT 'client_user_daily_usage|' || client_org_id || '|' || external_user || '|' || model || '|' || batch_run_id || '|' || created_at || '|' || updated_at AS s
    FROM client_user_daily_usage WHERE usage_date = $1
  UNION ALL
  SELECT 'client_model_daily_usage|' || client_org_id || '|' || model || '|' || batch_run_id || '|' || created_at || '|' || updated_at
    FROM client_model_daily_usage WHERE usage_date = $1
  UNION ALL
  SELECT 'client_daily_usage|' || client_org_id || '|' || batch_run_id || '|' || created_at || '|' || updated_at
    FROM client_daily_usage WHERE usage_date = $1`

t.test('SQLite file', async (t) => {
  runStoreContract(t, 'SQLite', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'store-contract-'))
    const path = join(dir, 'usage.db')
    const opened: SqliteStore[] = []
    const open = async () => {
      const store = openSqliteStore({ path })
      opened.push(store)
      return store
    }
    t.teardown(async () => {
      for (const s of opened) await s.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const store = await open()
    return {
      store,
      twin: open,
      async rowStamps(date) {
        const rows = store.db.$client.prepare(STAMP_SQL.replaceAll('$1', '?')).pluck().all(date, date, date) as string[]
        return rows.sort()
      },
      async breakStore() {
        // Every file of the database overwritten with bytes that are no SQLite header.
        for (const name of readdirSync(dir)) writeFileSync(join(dir, name), Buffer.alloc(64 * 1024, 0x5a))
      },
    }
  })
})

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
  t.test('PostgreSQL', async (t) => {
    const server = await sharedPostgres(t)
    runStoreContract(t, 'PostgreSQL', async (t) => {
      const url = await createMigratedDatabase(t, server)
      const opened: PostgresStore[] = []
      const open = async () => {
        const store = await openPostgresStore({ url })
        opened.push(store)
        return store
      }
      t.teardown(async () => {
        for (const s of opened) await s.close()
      })
      const store = await open()
      return {
        store,
        twin: open,
        async rowStamps(date) {
          const { rows } = await store.db.$client.query<{ s: string }>(STAMP_SQL, [date])
          return rows.map((r) => r.s).sort()
        },
        async breakStore() {
          const database = decodeURIComponent(new URL(url).pathname.slice(1))
          await server.admin(`DROP DATABASE ${pg.escapeIdentifier(database)} WITH (FORCE)`)
        },
      }
    })
  })
}
