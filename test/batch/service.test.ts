import t from 'tap'
import { buildTestApp, gatedRates, postEvents, runBatch, summaryRows, type TestApp } from '../helpers/app.js'
import { event } from '../helpers/events.js'
import type { RateProvider } from '../../src/rates/types.js'
import { createBatchService } from '../../src/batch/service.js'
import pino from 'pino'
import type { UsageSource } from '../../src/sources/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { fixedClock } from '../../src/clock.js'
import type { SqliteStore } from '../../src/db/sqlite/store.js'

const DAY = '2026-11-20'

/** A second batch service over the test app's database and source, with its own rate provider. */
function serviceOf(h: Pick<TestApp, 'store' | 'source' | 'clock' | 'config'>, rates: RateProvider, perClientConcurrency?: number) {
  return createBatchService({
    perClientConcurrency,
    store: h.store,
    source: h.source,
    rates,
    clock: h.clock,
    log: pino({ level: 'silent' }),
    timeZone: h.config.BUSINESS_TIMEZONE,
    defaultMarkupRate: h.config.defaultMarkupRate,
  })
}
/** A record of client c on DAY (event()'s default time). */
const record = (id: string, cost: string, client = 'c') => event({ request_id: id, client_org_id: client, cost_usd: cost })

t.test('shutdown past the grace period interrupts the day and leaves its previous rows', async (t) => {
  const { app, db, store, source, clock, config } = await buildTestApp(t)
  await postEvents(app, [record('a', '1')])
  await runBatch(app, { date: DAY })
  const before = summaryRows(db, 'client_daily_usage', DAY)
  await postEvents(app, [record('b', '2')])

  const { rates, release } = gatedRates()
  const batch = serviceOf({ store, source, clock, config }, rates)
  const [started] = await batch.startMany([DAY], 'api')
  const stopping = batch.stop(20)
  setTimeout(release, 60)
  await stopping
  const closed = await started!.done
  t.equal(closed.status, 'interrupted')
  t.match(closed.error_message, /interrupted/)
  t.same(summaryRows(db, 'client_daily_usage', DAY), before, 'previous summaries untouched')
  await t.rejects(batch.startMany([DAY], 'api'), /shutting down/, 'no new work after stop')
})

t.test('a day that finishes within the grace period completes normally', async (t) => {
  const { app, store, source, clock, config } = await buildTestApp(t)
  await postEvents(app, [record('a', '1')])
  const { rates, release } = gatedRates()
  const batch = serviceOf({ store, source, clock, config }, rates)
  const [first, second] = await batch.startMany([DAY, '2026-11-21'], 'api')
  const stopping = batch.stop(5_000)
  release()
  await stopping
  t.equal((await first!.done).status, 'succeeded_with_warnings')
  t.equal((await second!.done).status, 'interrupted', 'a queued day does not start once shutdown began')
})

t.test('a failing source fails the run, records the error and keeps the previous rows', async (t) => {
  let broken = false
  const { app, db } = await buildTestApp(t, {
    // The real SQLite source, switched to failing to simulate an unreachable store.
    source: (store) => wrapFailing(store, () => broken),
  })
  await postEvents(app, [record('a', '1')])
  await runBatch(app, { date: DAY })
  const before = summaryRows(db, 'client_daily_usage', DAY)
  t.equal(before.length, 1)
  broken = true
  const res = await runBatch(app, { date: DAY })
  const run = res.json().runs[0]
  t.equal(run.status, 'failed')
  t.match(run.error_message, /store unreachable/)
  t.same(summaryRows(db, 'client_daily_usage', DAY), before)
  broken = false
  t.equal((await runBatch(app, { date: DAY })).json().runs[0].status, 'succeeded_with_warnings', 'recovers on the next run')
})


function wrapFailing(store: SqliteStore, isBroken: () => boolean): UsageSource {
  const real = createSqliteSource({ store, clock: fixedClock(0) })
  return {
    ...real,
    dataSource: real.dataSource,
    dialect: real.dialect,
    // The day through the one grouped query, which this wrapper breaks.
    aggregateClients: undefined,
    aggregate(window, options) {
      if (isBroken()) {
        return (async function* () {
          throw new Error('store unreachable: connection refused')
        })()
      }
      return real.aggregate(window, options)
    },
  }
}

t.test('per client: a failing client keeps its rows, the others are replaced, the day is not a success', async (t) => {
  let failing: string | undefined
  const { app, db, store, clock, config } = await buildTestApp(t)
  const real = createSqliteSource({ store, clock: fixedClock(0) })
  const perClient: UsageSource = {
    ...real,
    dataSource: real.dataSource,
    dialect: real.dialect,
    listClients: async () => ['a', 'b'],
    aggregate(window, options) {
      if (options?.clientOrgId !== undefined && options.clientOrgId === failing) {
        return (async function* () {
          throw new Error(`query for ${options.clientOrgId} timed out`)
        })()
      }
      return real.aggregate(window, options)
    },
  }
  const batch = serviceOf({ store, source: perClient, clock, config }, gatedRatesReleased(), 2)
  await postEvents(app, [record('a1', '1', 'a'), record('b1', '2', 'b')])
  t.equal((await batch.runDate(DAY, 'api')).status, 'succeeded_with_warnings')
  const bBefore = summaryRows(db, 'client_daily_usage', DAY).find((r) => r.client_org_id === 'b')

  await postEvents(app, [record('a2', '10', 'a'), record('b2', '20', 'b')])
  failing = 'b'
  const partial = await batch.runDate(DAY, 'api')
  t.equal(partial.status, 'failed', 'a day with a failed client is not reported as success')
  t.match(partial.error_message, /1 client\(s\) could not be aggregated.*b: query for b timed out/)
  t.same(JSON.parse(partial.client_errors), [{ client_org_id: 'b', error: 'query for b timed out' }])
  const rows = summaryRows(db, 'client_daily_usage', DAY)
  t.equal(rows.find((r) => r.client_org_id === 'a')!.raw_cost_nano_usd, 11_000_000_000, 'a replaced with its new total')
  t.same(rows.find((r) => r.client_org_id === 'b'), bBefore, 'b kept as it was')
  const errors = (await app.inject({ url: `/batch/runs/${partial.id}` })).json().errors
  t.same(errors, [{ client_org_id: 'b', error: 'query for b timed out' }])

  failing = undefined
  const healed = await batch.runDate(DAY, 'api')
  t.equal(healed.status, 'succeeded_with_warnings')
  t.equal(summaryRows(db, 'client_daily_usage', DAY).find((r) => r.client_org_id === 'b')!.raw_cost_nano_usd, 22_000_000_000)
})

function gatedRatesReleased(): RateProvider {
  const { rates, release } = gatedRates()
  release()
  return rates
}

t.test('a ledger that cannot close a run: retried, then the day rejects without crashing, and the next day still runs', async (t) => {
  const { app, store, source, clock, config } = await buildTestApp(t)
  await postEvents(app, [record('a', '1')])
  let refusals = 0
  const gone = Object.assign(new Error('the database is gone'), { code: 'SQLITE_IOERR' })
  // finish refuses every close of DAY's run (the store down), and closes the other days.
  const closing: SqliteStore = Object.create(store)
  let dayRunId = -1
  Object.defineProperty(closing, 'runs', {
    value: {
      ...store.runs,
      claim: async (input: Parameters<typeof store.runs.claim>[0]) => {
        const claimed = await store.runs.claim(input)
        if (input.date === DAY) dayRunId = claimed.run.id
        return claimed
      },
      finish: async (id: number, outcome: Parameters<typeof store.runs.finish>[1]) => {
        if (id === dayRunId) {
          refusals += 1
          throw gone
        }
        return store.runs.finish(id, outcome)
      },
    },
  })
  const batch = serviceOf({ store: closing, source, clock, config }, { resolveUsdPlnRate: async () => ({ ok: false, reason: 'no NBP here' }) })
  const [first, second] = await batch.startMany([DAY, '2026-11-21'], 'api')
  await t.rejects(first!.done, /the database is gone/, 'the day rejects with the store failure')
  t.equal(refusals, 4, 'four attempts to close it')
  t.equal((await store.runs.get(first!.run.id))!.status, 'running', 'left running in the ledger, for recovery to abandon')
  t.notOk(batch.isInFlight(first!.run.id), 'no longer in flight here, so recovery judges it dead')
  t.equal((await second!.done).status, 'succeeded_with_warnings', 'the next day ran all the same')
})

/** A rate as NBP gives it, for DAY. */
const NBP_RATE = {
  ok: true as const,
  rate: { usage_date: DAY, rate: '4.0000', effective_date: '2026-11-19', table_no: '225/A/NBP/2026', source: 'nbp' as const, policy: 'previous-business-day' as const, fetched_at: '2026-11-27T12:00:00.000Z' },
}

t.test('the day is read while its rate is resolved: a slow NBP does not hold the read back', async (t) => {
  const { app, db, store, clock, config } = await buildTestApp(t)
  await postEvents(app, [record('a', '1'), record('b', '2', 'd')])
  const real = createSqliteSource({ store, clock: fixedClock(0) })
  let readStarted!: () => void
  const reading = new Promise<void>((resolve) => (readStarted = resolve))
  const source: UsageSource = {
    ...real,
    dataSource: real.dataSource,
    dialect: real.dialect,
    aggregateClients(window, signal) {
      readStarted()
      return real.aggregateClients!(window, signal)
    },
  }
  // The rate answers only once the read has begun; if the read waited for the rate, it would give up
  // after a second and the day would carry no PLN.
  const rates: RateProvider = {
    resolveUsdPlnRate: async () => {
      const began = await Promise.race([reading.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 1_000))])
      return began ? NBP_RATE : { ok: false, reason: 'the read did not start before the rate' }
    },
  }
  const run = await serviceOf({ store, source, clock, config }, rates).runDate(DAY, 'api')
  t.equal(run.status, 'succeeded', run.warnings)
  t.equal(run.exchange_rate_usd_pln, '4.0000')
  const rows = summaryRows(db, 'client_daily_usage', DAY)
  t.same(
    rows.map((r) => [r.client_org_id, r.markup_cost_nano_usd, r.markup_cost_nano_pln]),
    [
      ['c', 1_300_000_000, 5_200_000_000],
      ['d', 2_600_000_000, 10_400_000_000],
    ],
  )
})

t.test('a rate lookup that fails stops the read: the day fails with its error, the staging is dropped, the rows are kept', async (t) => {
  const { app, db, store, clock, config } = await buildTestApp(t)
  await postEvents(app, [record('a', '1')])
  await runBatch(app, { date: DAY })
  const before = summaryRows(db, 'client_daily_usage', DAY)
  t.equal(before.length, 1)
  await postEvents(app, [record('b', '2')])

  let stoppedWith: unknown
  // A read that never ends by itself: only its signal stops it.
  const source: UsageSource = {
    ...createSqliteSource({ store, clock: fixedClock(0) }),
    dataSource: 'sqlite',
    dialect: 'sqlite',
    async *aggregateClients(_window, signal) {
      await new Promise<void>((resolve) => {
        signal!.addEventListener('abort', () => resolve(), { once: true })
        setTimeout(resolve, 5_000).unref()
      })
      stoppedWith = signal!.reason
      signal!.throwIfAborted()
      throw new Error('the read was not stopped')
    },
  }
  const failure = Object.assign(new Error('rates table unreadable'), { code: 'SQLITE_IOERR' })
  let asked!: () => void
  const rateAsked = new Promise<void>((resolve) => (asked = resolve))
  const rates: RateProvider = {
    resolveUsdPlnRate: async () => {
      asked()
      await new Promise((resolve) => setTimeout(resolve, 20))
      throw failure
    },
  }
  const run = await serviceOf({ store, source, clock, config }, rates).runDate(DAY, 'api')
  await rateAsked
  t.equal(run.status, 'failed')
  t.match(run.error_message, /rates table unreadable/)
  t.equal(stoppedWith, failure, 'the read was stopped with the rate lookup\'s error')
  t.same(summaryRows(db, 'client_daily_usage', DAY), before, 'previous summaries untouched')
  const temp = db.$client.prepare("SELECT name FROM temp.sqlite_master WHERE type = 'table'").pluck().all()
  t.same(temp, [], 'no staging table left behind')
})

t.test('an unknown time zone is refused when the service is built, not at its first run', async (t) => {
  const { store, source, clock, config } = await buildTestApp(t)
  t.throws(
    () => createBatchService({ store, source, rates: gatedRatesReleased(), clock, log: pino({ level: 'silent' }), timeZone: 'Europe/Atlantis', defaultMarkupRate: config.defaultMarkupRate }),
    { name: 'RangeError', message: 'unknown time zone: "Europe/Atlantis"' },
  )
})
