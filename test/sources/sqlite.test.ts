import t from 'tap'
import { openDb } from '../../src/db/open.js'
import { dayWindow, fixedClock } from '../../src/clock.js'
import { buildTestApp, postEvents } from '../helper.js'
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

t.test('two days aggregated at the same time do not share a busy statement', async (t) => {
  const { app, source } = await buildTestApp(t)
  const base = { client_org_id: 'c', model: 'm', input_tokens: 1, output_tokens: 1, cost_usd: '1' }
  await postEvents(app, [
    { ...base, request_id: 'd1', timestamp: '2026-11-19T10:00:00Z' },
    { ...base, request_id: 'd2', timestamp: '2026-11-20T10:00:00Z', client_org_id: 'other' },
  ])
  const a = source.aggregate(dayWindow('2026-11-19', 'Europe/Warsaw'))[Symbol.asyncIterator]()
  const b = source.aggregate(dayWindow('2026-11-20', 'Europe/Warsaw'))[Symbol.asyncIterator]()
  // Both iterations are open at once, as two batch runs of different dates would be.
  const [ra, rb] = await Promise.all([a.next(), b.next()])
  t.equal((ra.value as { client_org_id: string }).client_org_id, 'c')
  t.equal((rb.value as { client_org_id: string }).client_org_id, 'other')
  t.ok((await a.next()).done)
  t.ok((await b.next()).done)
})
