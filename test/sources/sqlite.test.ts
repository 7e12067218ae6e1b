import t from 'tap'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
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

// A file-backed store, as the service runs: whole days are read client by client in a worker thread.
// workerMinRecords: 0 sends every day to the worker thread, 1e9 keeps every day on the calling thread.
const FILE_BACKED = [
  ['file-backed store, days read in a worker', 0],
  ['file-backed store, days read in-thread', 1e9],
] as const
for (const [name, workerMinRecords] of FILE_BACKED) t.test(name, async (t) => {
  runSourceContract(t, async (t) => {
    const path = join(t.testdir(), 'usage.db')
    const db = openDb({ path })
    const source = createSqliteSource({ db, clock: fixedClock(Date.UTC(2026, 10, 1)), path, workerMinRecords })
    t.ok(source.aggregateClients, 'offers client-by-client days')
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
        await source.close()
        db.$client.close()
        rmSync(path)
      },
    }
  })
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

t.test('a day read client by client: leaving early or aborting stops the reader', async (t) => {
  const path = join(t.testdir(), 'usage.db')
  const db = openDb({ path })
  const source = createSqliteSource({ db, clock: fixedClock(Date.UTC(2026, 10, 1)), path, workerMinRecords: 0 })
  t.teardown(async () => {
    await source.close()
    db.$client.close()
  })
  const day = '2026-11-20'
  const at = Date.parse('2026-11-20T10:00:00Z')
  const event = (i: number, client: string) => ({
    request_id: `r${i}`,
    client_org_id: client,
    external_user: 'u',
    model: 'm',
    input_tokens: 1,
    output_tokens: 1,
    total_tokens: 2,
    cost_nano_usd: 10n,
    occurred_at_ms: at,
  })
  await source.ingest(['a', 'b', 'c'].map((c, i) => event(i, c)))
  const window = dayWindow(day, 'Europe/Warsaw')

  const iterator = source.aggregateClients!(window)[Symbol.asyncIterator]()
  const first = await iterator.next()
  t.equal((first.value as { client_org_id: string }).client_org_id, 'a', 'clients come in id order')
  t.strictSame(await iterator.return!(undefined), { done: true, value: undefined }, 'leaving early ends the reader')

  const stop = new AbortController()
  stop.abort(new Error('grace period over'))
  await t.rejects(
    (async () => {
      for await (const client of source.aggregateClients!(window, stop.signal)) t.fail(`no client after abort: ${client.client_org_id}`)
    })(),
    /grace period over/,
  )
})
