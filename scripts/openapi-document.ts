// The OpenAPI document as YAML text, built from buildApp without listening: shared by
// `npm run openapi` (writes openapi.yaml) and the test that fails when the file is stale.
import { stringify } from 'yaml'
import { buildApp } from '../src/app.js'
import { fixedClock } from '../src/clock.js'
import { loadConfig } from '../src/config.js'
import { openDb } from '../src/db/open.js'
import { createSqliteSource } from '../src/sources/sqlite.js'

/**
 * Built with a token configured, an in-memory database and a fixed clock, so the document does
 * not depend on the machine's environment.
 */
export async function openApiYaml(): Promise<string> {
  const config = loadConfig({ SQLITE_PATH: ':memory:', BATCH_SCHEDULER_ENABLED: 'false', API_ADMIN_TOKEN: 'openapi-generation' })
  const db = openDb({ path: ':memory:' })
  const clock = fixedClock(0)
  const source = createSqliteSource({ db, clock, path: ':memory:' })
  const app = await buildApp(config, { db, source, clock })
  try {
    await app.ready()
    return stringify(app.swagger(), { lineWidth: 0, aliasDuplicateObjects: false })
  } finally {
    await app.close()
    await source.close()
    db.$client.close()
  }
}
