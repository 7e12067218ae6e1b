// The store contract (test/helpers/store-contract.ts) against both stores: SQLite on a real file,
// PostgreSQL on a real server. One suite, two stores: the same calls must give the same answers.
import t from 'tap'
import pg from 'pg'
import { openPostgresStore, type PostgresStore } from '../../src/db/postgres/store.js'
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

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
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
}
