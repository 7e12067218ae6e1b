import t, { type Test } from 'tap'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { openSqliteStore } from '../../src/db/sqlite/store.js'
import { dayWindow, fixedClock } from '../../src/clock.js'
import { buildTestApp, postEvents } from '../helper.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { legacyAsEvents, runSourceContract, type LegacyPoint } from '../helpers/source-contract.js'

/** An embedded store for the contract: in memory, or a file (as the service runs) read with the given worker threshold. */
async function embeddedStore(t: Test, file?: { workerMinRecords: number }) {
  const path = file ? join(t.testdir(), 'usage.db') : ':memory:'
  const store = openSqliteStore({ path })
  const clock = fixedClock(Date.UTC(2026, 10, 1))
  const source = createSqliteSource({ store, clock, ...(file ? { workerMinRecords: file.workerMinRecords } : {}) })
  t.teardown(async () => {
    await source.close()
    await store.close()
  })
  return {
    source,
    writeLegacy: async (points: LegacyPoint[]) => {
      await source.ingest(legacyAsEvents(points))
    },
    breakStore: async () => {
      await source.close()
      await store.close()
      if (file) rmSync(path)
    },
  }
}

runSourceContract(t, (t) => embeddedStore(t))

// A file-backed store, as the service runs: whole days are read client by client.
// workerMinRecords: 0 sends every day to the worker thread, 1e9 keeps every day on the calling thread.
const FILE_BACKED = [
  ['file-backed store, days read in a worker', 0],
  ['file-backed store, days read in-thread', 1e9],
] as const
for (const [name, workerMinRecords] of FILE_BACKED) {
  t.test(name, async (t) => {
    runSourceContract(t, async (t) => {
      const store = await embeddedStore(t, { workerMinRecords })
      t.ok(store.source.aggregateClients, 'offers client-by-client days')
      return store
    })
  })
}

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
  const store = openSqliteStore({ path })
  const source = createSqliteSource({ store, clock: fixedClock(Date.UTC(2026, 10, 1)), workerMinRecords: 0 })
  t.teardown(async () => {
    await source.close()
    await store.close()
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

t.test('a day read in the worker leaves the event loop free; the in-thread read holds it', async (t) => {
  const path = join(t.testdir(), 'usage.db')
  const store = openSqliteStore({ path })
  const clock = fixedClock(Date.UTC(2026, 10, 1))
  const inWorker = createSqliteSource({ store, clock, workerMinRecords: 0 })
  const inThread = createSqliteSource({ store, clock, workerMinRecords: 1e9 })
  t.teardown(async () => {
    await inWorker.close()
    await inThread.close()
    await store.close()
  })
  const at = Date.parse('2026-11-20T10:00:00Z')
  await inWorker.ingest(
    Array.from({ length: 3_000 }, (_, i) => ({
      request_id: `r${i}`,
      client_org_id: `client-${i % 30}`,
      external_user: `u${i % 7}`,
      model: `m${i % 5}`,
      input_tokens: 1,
      output_tokens: 1,
      total_tokens: 2,
      cost_nano_usd: 10n,
      occurred_at_ms: at,
    })),
  )
  const window = dayWindow('2026-11-20', 'Europe/Warsaw')
  /** Event-loop turns (setImmediate callbacks) that ran before the first client arrived. */
  async function turnsBeforeFirstClient(source: typeof inWorker): Promise<number> {
    let turns = 0
    let reading = true
    const spin = () => {
      if (!reading) return
      turns += 1
      setImmediate(spin)
    }
    setImmediate(spin)
    const iterator = source.aggregateClients!(window)[Symbol.asyncIterator]()
    const first = await iterator.next()
    reading = false
    t.equal((first.value as { client_org_id: string }).client_org_id, 'client-0')
    let clients = 1
    while (!(await iterator.next()).done) clients += 1
    t.equal(clients, 30, 'every client delivered')
    return turns
  }
  t.ok((await turnsBeforeFirstClient(inWorker)) > 0, 'the service kept running while the worker read the day')
  // The in-thread walk is synchronous: nothing else runs until the whole day is read. That is why
  // it only takes small days (fewer than workerMinRecords records).
  t.equal(await turnsBeforeFirstClient(inThread), 0, 'the in-thread read runs to its end at once')
})
