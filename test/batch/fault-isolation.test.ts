// Fault isolation per client (issue 13), on real SQLite files: a client whose rows cannot be read,
// built or written fails alone — the other clients of the day are written, its previous rows are
// kept, the run ends succeeded_with_warnings naming it, and GET /batch/runs/{id} lists why. A store
// that cannot be used fails the whole day, as before.
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import pino from 'pino'
import type { App } from '../../src/app.js'
import { createBatchService } from '../../src/batch/service.js'
import { dayWindow, fixedClock } from '../../src/clock.js'
import type { Db } from '../../src/db/sqlite/open.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import type { UsageSource } from '../../src/sources/types.js'
import { expectNano, expectTimesRate, nanoText, postEvents, runBatch, summaryRows, type EventInput } from '../helper.js'
import { buildStoreRatesApp } from '../helpers/store-rates.js'

const DAY = '2026-11-20'
const TABLES = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage'] as const

function record(id: string, client: string, cost: string, user = 'u1'): EventInput {
  return { request_id: id, client_org_id: client, model: 'vendor/model', external_user: user, input_tokens: 10, output_tokens: 5, cost_usd: cost, timestamp: `${DAY}T10:00:00Z` }
}

async function put(app: App, url: string, payload: object) {
  const res = await app.inject({ method: 'PUT', url, payload })
  if (res.statusCode >= 300) throw new Error(`PUT ${url}: ${res.statusCode} ${res.body}`)
}

/** Every stored row of a client on DAY, in the three tables. */
function rowsOf(db: Db, client: string) {
  return TABLES.flatMap((table) => summaryRows(db, table, DAY).filter((r) => r.client_org_id === client).map((r) => ({ table, ...r })))
}

/** Raw events written straight into usage_events (amounts ingestion would refuse per record). */
function insertRaw(db: Db, rows: Array<{ id: string; client: string; tokens?: number; costNano: bigint }>) {
  const at = dayWindow(DAY, 'Europe/Warsaw').startMs + 3_600_000
  const insert = db.$client.prepare(
    `INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens, cost_nano_usd, occurred_at, received_at)
     VALUES (?, ?, 'vendor/model', 'u1', ?, 0, ?, ?, ?, ?)`,
  )
  db.$client.transaction(() => {
    for (const r of rows) insert.run(r.id, r.client, r.tokens ?? 1, r.tokens ?? 1, r.costNano, at, at)
  })()
}

/** One database folder per test, shared by the app and its source. */
const dirs = new WeakMap<Test, string>()
function dbDir(t: Test): string {
  let dir = dirs.get(t)
  if (!dir) {
    dir = t.testdir({})
    dirs.set(t, dir)
  }
  return dir
}

function captureLog() {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    },
  })
  return { log: pino({ level: 'info' }, destination), lines }
}

t.test('a poisoned client beside a normal one: the normal one is written, the poisoned one kept and named; a rerun after the fix repairs it', async (t) => {
  const { app, db, store, clock, config, source, rates } = await buildStoreRatesApp(t)
  await put(app, '/clients/poison/pricing', { markup_rate: '10', effective_from: '2026-11-01' })
  await put(app, `/usage/exchange-rates/${DAY}`, { rate: '4', note: 'by hand' })
  await postEvents(app, [record('p0', 'poison', '1'), record('a0', 'acme', '2')])
  t.equal((await runBatch(app, { date: DAY })).json().runs[0].status, 'succeeded', 'a first run writes both')
  const poisonBefore = rowsOf(db, 'poison')
  t.equal(poisonBefore.length, 3)

  // 240 records of 999,999 USD at markup 10 and 4 PLN/USD: 9.6e18 nano-PLN, past a 64-bit column.
  const poison = Array.from({ length: 240 }, (_, i) => record(`p${i + 1}`, 'poison', '999999'))
  t.equal((await postEvents(app, [...poison, record('a1', 'acme', '3')])).statusCode, 200)
  const { log, lines } = captureLog()
  const batch = createBatchService({ store, source, rates, clock, log, timeZone: config.BUSINESS_TIMEZONE, defaultMarkupRate: config.defaultMarkupRate })
  const run = await batch.runDate(DAY, 'api')
  t.equal(run.status, 'succeeded_with_warnings', 'one client failing is not a failed day')
  t.equal(run.error_message, null)
  const warnings = JSON.parse(run.warnings) as string[]
  t.equal(warnings.length, 1)
  t.match(warnings[0], /client "poison": summaries not written, previous ones kept: markup_cost_nano_pln of \d+ nano-units .* outside what a 64-bit summary column holds/)

  const served = (await app.inject({ url: `/batch/runs/${run.id}` })).json()
  t.equal(served.status, 'succeeded_with_warnings')
  t.equal(served.errors.length, 1)
  t.match(served.errors[0], { client_org_id: 'poison', error: /markup_cost_nano_pln .* outside/ })
  t.same(served.warnings, warnings)

  t.same(rowsOf(db, 'poison'), poisonBefore, 'the poisoned client keeps its previous rows, in all three tables')
  t.equal(summaryRows(db, 'client_daily_usage', DAY).find((r) => r.client_org_id === 'acme')!.raw_cost_nano_usd, 5_000_000_000, 'acme written')
  t.equal(run.clients_processed, 1)

  const warned = lines.filter((l) => l.msg === 'client summaries not written; its previous summaries are kept')
  t.equal(warned.length, 1, 'one warn line per failed client')
  t.match(warned[0], { level: 40, client: 'poison', reason: /markup_cost_nano_pln/ })

  // The fix: a rate that brings PLN back into range. The rerun writes the client exactly.
  await put(app, `/usage/exchange-rates/${DAY}`, { rate: '0.5', note: 'corrected' })
  const healed = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(healed.status, 'succeeded')
  t.same((await app.inject({ url: `/batch/runs/${healed.id}` })).json().errors, [])
  const raw = expectNano('1') + 240n * expectNano('999999')
  const pln = expectTimesRate(expectTimesRate(raw, '10'), '0.5')
  const daily = (await app.inject({ url: `/usage/clients/poison/daily?from=${DAY}&to=${DAY}&money=string` })).json()
  t.match(daily.days, [{ raw_cost_usd: nanoText(raw), markup_cost_pln: nanoText(pln), total_requests: 241 }])
})

// workerMinRecords 0 reads the day in the worker thread, 1e9 on the calling thread.
for (const [mode, workerMinRecords] of [
  ['in the worker thread', 0],
  ['on the calling thread', 1e9],
] as const) {
  t.test(`SQLite cannot sum a client (integer overflow, tokens past 2^53), read ${mode}: that client alone fails`, async (t) => {
    const { app, db } = await buildStoreRatesApp(t, {
      source: (store) => createSqliteSource({ store, clock: fixedClock(0), workerMinRecords }),
      dir: dbDir(t),
    })
    await postEvents(app, [record('a0', 'acme', '2')])
    // 9,300 raw records of 1e15 nano-USD: their SUM passes 2^63, which SQLite refuses to wrap.
    insertRaw(db, Array.from({ length: 9_300 }, (_, i) => ({ id: `o${i}`, client: 'overflow', costNano: 1_000_000_000_000_000n })))
    insertRaw(db, [
      { id: 't1', client: 'tokens', tokens: 5e15, costNano: 1n },
      { id: 't2', client: 'tokens', tokens: 5e15, costNano: 1n },
    ])
    const run = (await runBatch(app, { date: DAY })).json().runs[0]
    t.equal(run.status, 'succeeded_with_warnings')
    const errors = (await app.inject({ url: `/batch/runs/${run.id}` })).json().errors as Array<{ client_org_id: string; error: string }>
    t.same(errors.map((e) => e.client_org_id).sort(), ['overflow', 'tokens'])
    t.match(errors.find((e) => e.client_org_id === 'overflow')!.error, /integer overflow/)
    t.match(errors.find((e) => e.client_org_id === 'tokens')!.error, /exceeds 2\^53/)
    t.match(run.warnings, [/markup_cost_pln not computed/, /client "overflow"/, /client "tokens"/])
    t.same(
      summaryRows(db, 'client_daily_usage', DAY).map((r) => r.client_org_id),
      ['acme'],
      'the other client is written; the failed ones have no rows',
    )
  })
}

t.test("a staging insert refused for one client (the store delivered it twice) fails that client and keeps its rows", async (t) => {
  let repeat = false
  const { app, db } = await buildStoreRatesApp(t, {
    source: (store) => {
      const real = createSqliteSource({ store, clock: fixedClock(0) })
      return {
        ...real,
        dataSource: real.dataSource,
        dialect: real.dialect,
        async *aggregateClients(window, signal) {
          for await (const client of real.aggregateClients!(window, signal)) {
            yield client
            // A store that hands the same client over twice would have it counted twice.
            if (repeat && client.client_org_id === 'twice') yield client
          }
        },
      } satisfies UsageSource
    },
    dir: dbDir(t),
  })
  await postEvents(app, [record('a0', 'acme', '1'), record('w0', 'twice', '1')])
  t.equal((await runBatch(app, { date: DAY })).json().runs[0].status, 'succeeded_with_warnings')
  const before = rowsOf(db, 'twice')
  await postEvents(app, [record('a1', 'acme', '1'), record('w1', 'twice', '1')])
  repeat = true
  const run = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(run.status, 'succeeded_with_warnings')
  t.match((await app.inject({ url: `/batch/runs/${run.id}` })).json().errors, [{ client_org_id: 'twice', error: /staged twice/ }])
  t.same(rowsOf(db, 'twice'), before, 'its first staging is dropped too: the stored rows stay as they were')
  t.equal(summaryRows(db, 'client_daily_usage', DAY).find((r) => r.client_org_id === 'acme')!.total_requests, 2, 'acme written')
})

t.test('a store that cannot be used still fails the whole day and changes nothing', async (t) => {
  const { app, db } = await buildStoreRatesApp(t)
  await postEvents(app, [record('a0', 'acme', '1'), record('b0', 'beta', '1')])
  await runBatch(app, { date: DAY })
  const before = TABLES.map((table) => summaryRows(db, table, DAY))
  await postEvents(app, [record('a1', 'acme', '1'), ...Array.from({ length: 400 }, (_, i) => record(`b${i + 1}`, 'beta', '1', `user-${i}`))])

  t.test('the staging store is full', async (t) => {
    // A temp database of 8 pages holds the empty staging tables and a small client, not 400 user rows.
    db.$client.pragma('temp.max_page_count = 8')
    t.teardown(() => db.$client.pragma('temp.max_page_count = 1073741823'))
    const run = (await runBatch(app, { date: DAY })).json().runs[0]
    t.equal(run.status, 'failed')
    t.match(run.error_message, /database or disk is full/)
    t.same(TABLES.map((table) => summaryRows(db, table, DAY)), before)
  })

  t.test('the commit transaction fails', async (t) => {
    db.$client.exec(`CREATE TEMP TRIGGER refuse_commit BEFORE UPDATE ON main.client_daily_usage BEGIN SELECT RAISE(ABORT, 'commit refused by the test'); END`)
    t.teardown(() => db.$client.exec('DROP TRIGGER temp.refuse_commit'))
    const run = (await runBatch(app, { date: DAY })).json().runs[0]
    t.equal(run.status, 'failed')
    t.match(run.error_message, /commit refused by the test/)
    t.same(TABLES.map((table) => summaryRows(db, table, DAY)), before, 'rolled back whole')
  })

  t.test('and once the store is usable again the day is written', async (t) => {
    const run = (await runBatch(app, { date: DAY })).json().runs[0]
    t.equal(run.status, 'succeeded_with_warnings')
    t.equal(summaryRows(db, 'client_user_daily_usage', DAY).filter((r) => r.client_org_id === 'beta').length, 401)
  })
})
