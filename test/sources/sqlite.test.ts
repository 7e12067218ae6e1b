import t from 'tap'
import { openDb } from '../../src/db/open.js'
import { fixedClock } from '../../src/clock.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { legacyAsEvents, runSourceContract } from '../helpers/source-contract.js'

runSourceContract(t, async (t) => {
  const db = openDb({ path: ':memory:' })
  const source = createSqliteSource({ db, clock: fixedClock(Date.UTC(2026, 10, 1)) })
  t.teardown(async () => {
    await source.close()
    if (db.$client.open) db.$client.close()
  })
  return {
    source,
    writeLegacy: async (points) => {
      await source.ingest(legacyAsEvents(points))
    },
    breakStore: async () => {
      db.$client.close()
    },
  }
})
