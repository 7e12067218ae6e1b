// Graceful shutdown of the background work: the scheduler stops first; a started day finishes
// within the grace period, or is interrupted when it runs out, writing nothing; queued days never start.
import t from 'tap'
import pino from 'pino'
import { buildTestApp, postEvents } from '../helper.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import type { UsageSource } from '../../src/sources/types.js'
import type { SqliteStore } from '../../src/db/sqlite/store.js'
import { createScheduler } from '../../src/scheduler/scheduler.js'
import { manualTimers } from '../support/timers.js'
import { summaryRows } from '../helper.js'
import { createBatchService } from '../../src/batch/service.js'

/** The embedded source, but each aggregation waits `delayMs` (honouring the abort signal) before its rows. */
function slowSource(delayMs: number) {
  return (store: SqliteStore): UsageSource => {
    const inner = createSqliteSource({ store, clock: { now: () => Date.now() } })
    return {
      ...inner,
      // The day through the one grouped query, which this wrapper slows down.
      aggregateClients: undefined,
      async *aggregate(window, options = {}) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, delayMs)
          options.signal?.addEventListener('abort', () => {
            clearTimeout(timer)
            reject(options.signal!.reason)
          })
        })
        yield* inner.aggregate(window, options)
      },
    }
  }
}

const event = { request_id: 'a', client_org_id: 'acme', model: 'm', input_tokens: 5, output_tokens: 1, cost_usd: '0.5', timestamp: '2026-11-25T10:00:00Z' }

t.test('stop lets a started day finish within the grace period; queued days close interrupted', async (t) => {
  const test = await buildTestApp(t, { source: slowSource(300) })
  await postEvents(test.app, [event])
  const batch = test.app.services.batch
  const started = await batch.startMany(['2026-11-25', '2026-11-26'], 'api')
  await new Promise((resolve) => setTimeout(resolve, 50))
  await batch.stop(5_000)
  const [first, second] = await Promise.all(started.map((s) => s.done))
  t.equal(first!.status, 'succeeded_with_warnings', 'the started day finished')
  t.equal(summaryRows(test.db, 'client_daily_usage', '2026-11-25').length, 1)
  t.equal(second!.status, 'interrupted', 'the queued day never started')
  await t.rejects(batch.startMany(['2026-11-24'], 'api'), { code: 'USAGE_BATCH_SHUTTING_DOWN', statusCode: 503 }, 'no new work after stop')
})

t.test('when the grace period runs out the day is interrupted and its previous summaries stay', async (t) => {
  const test = await buildTestApp(t, { source: slowSource(5_000) })
  await postEvents(test.app, [event])
  // A previous run's rows, written through a second service on the same file without the delay.
  const quick = createBatchService({
    store: test.store,
    source: createSqliteSource({ store: test.store, clock: test.clock }),
    rates: test.app.services.rates,
    clock: test.clock,
    log: pino({ level: 'silent' }),
    timeZone: 'Europe/Warsaw',
    defaultMarkupRate: '1.3',
  })
  await quick.runDate('2026-11-25', 'api')
  const before = summaryRows(test.db, 'client_daily_usage', '2026-11-25')
  await postEvents(test.app, [{ ...event, request_id: 'b' }])

  const batch = test.app.services.batch
  const [s] = await batch.startMany(['2026-11-25'], 'api')
  const stoppedAt = Date.now()
  await batch.stop(100)
  t.ok(Date.now() - stoppedAt < 2_000, 'stop returns soon after the grace period')
  const closed = await s!.done
  t.equal(closed.status, 'interrupted')
  t.same(summaryRows(test.db, 'client_daily_usage', '2026-11-25'), before, 'previous summaries untouched')
})

t.test('a stopped scheduler arms no timer and starts no tick', async (t) => {
  const test = await buildTestApp(t)
  const manual = manualTimers(test.clock)
  const scheduler = createScheduler({
    batch: test.app.services.batch,
    store: test.store,
    clock: test.clock,
    log: pino({ level: 'silent' }),
    cron: '0 13 * * *',
    timeZone: 'Europe/Warsaw',
    lookbackDays: 0,
    catchupDays: 0,
    timers: manual.timers,
  })
  await scheduler.start()
  t.equal(manual.pendingCount(), 1)
  scheduler.stop()
  t.equal(manual.pendingCount(), 0, 'the timer is cleared')
  await manual.advanceTo(Date.parse('2026-12-05T00:00:00Z'), () => scheduler.idle())
  t.equal((await test.store.runs.list({ limit: 10 })).length, 0, 'no tick ran')
  t.equal(scheduler.nextRun(), null)
})
