// Large ingests stored by the ingest writer (src/db/sqlite/ingest-writer.ts), on a connection of its
// own in a worker thread: the same rows, conflicts, voids and batch figures as ingests stored on the
// event loop; every record of concurrent requests stored once; a void racing an ingest leaves each
// record either stored or voided, never both or neither; a writer that dies fails its ingests with
// a 503 and is started again; closing waits for the ingests in hand.
import t, { type Test } from 'tap'
import { Worker } from 'node:worker_threads'
import { buildTestApp, postEvents, runBatch, summaryRows, type TestApp } from '../helpers/app.js'
import { dayEvents, rawEvent, type EventInput } from '../helpers/events.js'
import { createIngestWriter, WRITER_MIN_RECORDS } from '../../src/db/sqlite/ingest-writer.js'
import { openSqliteStore } from '../../src/db/sqlite/store.js'
import { decodeEvents, encodeEvents } from '../../src/event-columns.js'
import type { UsageEvent } from '../../src/usage-event.js'

const DAY = '2026-11-20'
const SUMMARY_TABLES = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']

/** Every stored raw row, all columns, in request_id order. */
const storedRows = (app: TestApp) => app.db.$client.prepare('SELECT * FROM usage_events ORDER BY request_id').raw().all()

/** `n` records of DAY, enough (checked) to go to the writer. */
function large(t: Test, prefix: string, n = WRITER_MIN_RECORDS): EventInput[] {
  t.ok(n >= WRITER_MIN_RECORDS, 'a large ingest')
  return dayEvents(DAY, n, prefix)
}

t.test('a large ingest stores the same rows and yields the same batch as small ingests on the event loop', async (t) => {
  const records = large(t, 'big', 2_000)
  const big = await buildTestApp(t)
  const res = await postEvents(big.app, records)
  t.same(res.json(), { accepted: 2_000, duplicates: 0 }, res.body)

  const reference = await buildTestApp(t)
  for (let i = 0; i < records.length; i += 500) t.equal((await postEvents(reference.app, records.slice(i, i + 500))).statusCode, 200)
  const rows = storedRows(big)
  t.equal(rows.length, 2_000)
  t.same(rows, storedRows(reference), 'the same rows, every column')

  t.same((await postEvents(big.app, records)).json(), { accepted: 0, duplicates: 2_000 }, 'sent again: duplicates, nothing twice')
  // NBP is unreachable in tests: both runs succeed with the warning that PLN is missing.
  for (const app of [big, reference]) t.equal((await runBatch(app.app, { date: DAY })).json().runs[0].status, 'succeeded_with_warnings')
  for (const table of SUMMARY_TABLES) {
    const strip = (r: Record<string, unknown>) => ({ ...r, id: undefined, created_at: undefined, updated_at: undefined, batch_run_id: undefined })
    const got = summaryRows(big.db, table, DAY).map(strip)
    t.ok(got.length > 0, `${table} has rows`)
    t.same(got, summaryRows(reference.db, table, DAY).map(strip), `${table}: the same figures`)
  }
})

t.test('a large ingest with a record conflicting with a stored or voided one: 409 naming it, nothing stored', async (t) => {
  const test = await buildTestApp(t)
  const { app } = test
  const stored = dayEvents(DAY, 2, 'kept')
  t.equal((await postEvents(app, stored)).statusCode, 200)
  t.same((await app.inject({ method: 'POST', url: '/usage/events/void', payload: { request_ids: ['kept-0001'], reason: 'test traffic' } })).json().voided, 1)
  const before = storedRows(test).length
  const records = large(t, 'new')
  records[500] = { ...stored[0]!, cost_usd: '7' }
  records[999] = stored[1]!
  const res = await postEvents(app, records)
  t.equal(res.statusCode, 409, res.body)
  t.match(res.json().errors, [
    { index: 500, field: 'request_id', message: /already stored with different cost_usd/ },
    { index: 999, field: 'request_id', message: /was voided on .* \(test traffic\)/ },
  ])
  t.equal(res.json().errors.length, 2)
  t.equal(storedRows(test).length, before, 'nothing of the request stored')
})

t.test('concurrent large ingests over real HTTP: every record stored once', async (t) => {
  const { app, db } = await buildTestApp(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const bodies = ['p1', 'p2', 'p3', 'p4', 'p1'].map((p) => JSON.stringify({ events: large(t, p) }))
  const answers = await Promise.all(
    bodies.map(async (body) => {
      const res = await fetch(`http://127.0.0.1:${address.port}/usage/events`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
      t.equal(res.status, 200)
      return (await res.json()) as { accepted: number; duplicates: number }
    }),
  )
  t.equal(answers.reduce((n, a) => n + a.accepted, 0), 4 * WRITER_MIN_RECORDS, 'accepted once each')
  t.equal(answers.reduce((n, a) => n + a.duplicates, 0), WRITER_MIN_RECORDS, 'the body sent twice: its second copy all duplicates')
  t.equal(db.$client.prepare('SELECT count(*) FROM usage_events').pluck().get(), 4 * WRITER_MIN_RECORDS)
})

t.test('a void racing a large ingest: each record ends stored or voided, never both, never neither', async (t) => {
  const { app, db } = await buildTestApp(t)
  // The writer started first, so the races below are the ingest's, not the thread's start.
  t.equal((await postEvents(app, large(t, 'warm'))).statusCode, 200)
  const delaysMs = [0, 1, 3, 6, 12, 25, 50]
  let voidedRounds = 0
  let checked = 0
  for (const [round, delayMs] of delaysMs.entries()) {
    const records = large(t, `race${round}`)
    const roundIds = records.filter((_, i) => i % 50 === 0).map((r) => r.request_id)
    const [ingest, voided] = await Promise.all([
      postEvents(app, records),
      new Promise((resolve) => setTimeout(resolve, delayMs)).then(() =>
        app.inject({ method: 'POST', url: '/usage/events/void', payload: { request_ids: roundIds, reason: 'race' } }),
      ),
    ])
    t.equal(ingest.statusCode, 200, ingest.body)
    t.equal(voided.statusCode, 200, voided.body)
    const v = voided.json() as { voided: number; not_found: string[] }
    if (v.voided > 0) voidedRounds += 1
    for (const id of roundIds) {
      const inEvents = db.$client.prepare('SELECT count(*) FROM usage_events WHERE request_id = ?').pluck().get(id) as number
      const inVoids = db.$client.prepare('SELECT count(*) FROM usage_event_voids WHERE request_id = ?').pluck().get(id) as number
      if (inEvents + inVoids !== 1 || (inVoids === 1) === v.not_found.includes(id)) t.fail(`${id}: ${inEvents} stored, ${inVoids} voided, answer ${JSON.stringify(v)}`)
      checked += 1
    }
  }
  t.equal(checked, delaysMs.length * 20, `every raced id checked (the void came after the ingest in ${voidedRounds} of ${delaysMs.length} rounds)`)
})

t.test('records cross to the writer unchanged', async (t) => {
  const edge: UsageEvent[] = [
    rawEvent({ request_id: 'a', client_org_id: 'ąćę 🧾', model: 'm/ü\u0000x', external_user: '\uD83D', input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_nano_usd: 0n }),
    rawEvent({
      request_id: 'r'.repeat(200),
      external_user: '',
      input_tokens: 1_000_000_000_000,
      output_tokens: 999_999_999_999,
      total_tokens: 1_999_999_999_999,
      cost_nano_usd: 1_000_000n * 1_000_000_000n,
      occurred_at_ms: Date.parse('2026-11-28T12:00:00.999Z'),
    }),
  ]
  t.same(decodeEvents(structuredClone(encodeEvents(edge))), edge)
  t.same(decodeEvents(encodeEvents([])), [])
  t.throws(() => decodeEvents({ ...encodeEvents(edge), text: 'abc' }), /columns of 2 records hold 8 strings/)
})

t.test('a writer that dies fails its ingests with a 503 and is started again; its SQLite errors keep their code', async (t) => {
  const dir = t.testdir({})
  const store = openSqliteStore({ path: `${dir}/usage.db` })
  t.teardown(() => store.close())
  const batch = Array.from({ length: 3 }, (_, i) => rawEvent({ request_id: `w-${i}` }))
  let started = 0
  const scripts = [
    `require('node:worker_threads').parentPort.on('message', () => process.exit(3))`,
    `const { parentPort } = require('node:worker_threads')
     parentPort.on('message', ({ id }) => parentPort.postMessage({ id, error: { name: 'SqliteError', message: 'database is locked', code: 'SQLITE_BUSY' } }))`,
  ]
  const writer = createIngestWriter(`${dir}/usage.db`, undefined, () => new Worker(scripts[started++]!, { eval: true }))
  const died = await writer.ingest(batch, 1).catch((e: unknown) => e as Error & { statusCode?: number })
  t.match(died, { statusCode: 503, message: /did not complete; send it again/ })
  const busy = await writer.ingest(batch, 1).catch((e: unknown) => e as Error & { code?: string })
  t.match(busy, { name: 'SqliteError', code: 'SQLITE_BUSY', message: 'database is locked' })
  t.equal(store.isStoreFailure(busy), true, 'classified as the store failing, as on the event loop')
  t.equal(started, 2, 'a new worker after the exit')
  await writer.close()
})

t.test('closing the store waits for the large ingest in hand: it is stored, not lost', async (t) => {
  const dir = t.testdir({})
  const path = `${dir}/usage.db`
  const store = openSqliteStore({ path })
  const batch = Array.from({ length: WRITER_MIN_RECORDS }, (_, i) => rawEvent({ request_id: `c-${i}` }))
  const ingest = store.rawEvents.ingest(batch, 1)
  const closed = store.close()
  t.same(await ingest, { accepted: WRITER_MIN_RECORDS, conflicts: [] })
  await closed
  await t.rejects(store.rawEvents.ingest(batch.map((e) => ({ ...e, request_id: `late-${e.request_id}` })), 1), /closed|not open/, 'nothing is written after close')
  const again = openSqliteStore({ path })
  t.teardown(() => again.close())
  t.equal((await again.rawEvents.extent()).rows, WRITER_MIN_RECORDS)
})
