// The scheduler driven by an injected clock and manual timers: when ticks fire, what they run,
// that they never overlap or duplicate an API run, catch-up after downtime, and /batch/status.
import t from 'tap'
import { Writable } from 'node:stream'
import { hostname } from 'node:os'
import { dirname } from 'node:path'
import { buildTestApp, postEvents, type TestApp } from '../helpers/app.js'
import { createLogger } from '../../src/logger.js'
import { createScheduler } from '../../src/scheduler/scheduler.js'
import type { RateProvider } from '../../src/rates/types.js'
import { manualTimers } from '../helpers/timers.js'
import { event } from '../helpers/events.js'

const TZ = 'Europe/Warsaw'

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { log: createLogger({ level: 'info', destination: stream }), lines }
}

function schedulerFor(test: TestApp, options: { lookbackDays?: number; catchupDays?: number; pidAlive?: (pid: number) => boolean } = {}) {
  const manual = manualTimers(test.clock)
  const { log, lines } = capturingLogger()
  const scheduler = createScheduler({
    batch: test.app.services.batch,
    store: test.store,
    clock: test.clock,
    log,
    cron: test.config.BATCH_SCHEDULE_CRON,
    timeZone: TZ,
    lookbackDays: options.lookbackDays ?? 0,
    catchupDays: options.catchupDays ?? 0,
    timers: manual.timers,
    pidAlive: options.pidAlive,
  })
  return { scheduler, manual, lines }
}

/** Every run of the ledger, oldest id first. */
async function allRuns(test: TestApp) {
  return (await test.store.runs.list({ limit: 1000 })).reverse()
}

/** A rate provider that holds every day at its first step until released, and remembers the order. */
function gatedRates() {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const asked: string[] = []
  const rates: RateProvider = {
    async resolveUsdPlnRate(date) {
      asked.push(date)
      await gate
      return { ok: false, reason: 'test: no rate' }
    },
  }
  return { rates, release, asked }
}

const okRates = (asked: string[] = []): RateProvider => ({
  async resolveUsdPlnRate(date) {
    asked.push(date)
    return {
      ok: true,
      rate: { usage_date: date, rate: '4.0341', effective_date: date, table_no: '1/A/NBP/2026', source: 'manual', policy: 'previous-business-day', fetched_at: '2026-01-01T00:00:00.000Z' },
    }
  },
})

const tickCases = [
  { name: 'winter: 13:00 Warsaw is 12:00 UTC', from: '2026-01-15T00:00:00Z', to: '2026-01-16T00:00:00Z', ticks: [['2026-01-15T12:00:00.000Z', '2026-01-14']] },
  { name: 'summer: 13:00 Warsaw is 11:00 UTC', from: '2026-07-15T00:00:00Z', to: '2026-07-16T00:00:00Z', ticks: [['2026-07-15T11:00:00.000Z', '2026-07-14']] },
  {
    name: 'spring DST change (2026-03-29): CET the day before, CEST on the day',
    from: '2026-03-27T12:30:00Z',
    to: '2026-03-31T00:00:00Z',
    ticks: [
      ['2026-03-28T12:00:00.000Z', '2026-03-27'],
      ['2026-03-29T11:00:00.000Z', '2026-03-28'],
      ['2026-03-30T11:00:00.000Z', '2026-03-29'],
    ],
  },
  {
    name: 'autumn DST change (2026-10-25): CEST the day before, CET on the day',
    from: '2026-10-23T12:30:00Z',
    to: '2026-10-27T00:00:00Z',
    ticks: [
      ['2026-10-24T11:00:00.000Z', '2026-10-23'],
      ['2026-10-25T12:00:00.000Z', '2026-10-24'],
      ['2026-10-26T12:00:00.000Z', '2026-10-25'],
    ],
  },
]

for (const c of tickCases) {
  t.test(`the tick fires at 13:00 local time — ${c.name}`, async (t) => {
    const test = await buildTestApp(t, { nowMs: Date.parse(c.from) })
    const { scheduler, manual } = schedulerFor(test)
    t.teardown(() => scheduler.stop())
    await scheduler.start()
    await scheduler.idle()
    t.equal((await allRuns(test)).length, 0, 'nothing runs before the first tick')
    await manual.advanceTo(Date.parse(c.to), () => scheduler.idle())
    const runs = (await allRuns(test))
    t.same(
      runs.map((r) => [r.started_at, r.processing_date, r.trigger]),
      c.ticks.map(([at, day]) => [at, day, 'schedule']),
      'one run of yesterday per tick, claimed at the tick instant',
    )
    t.ok(runs.every((r) => r.status === 'succeeded_with_warnings'))
  })
}

t.test('each tick runs yesterday first, then the lookback days before it', async (t) => {
  const test = await buildTestApp(t, { nowMs: Date.parse('2026-01-15T00:00:00Z') })
  const { scheduler, manual } = schedulerFor(test, { lookbackDays: 2 })
  t.teardown(() => scheduler.stop())
  await scheduler.start()
  await manual.advanceTo(Date.parse('2026-01-15T18:00:00Z'), () => scheduler.idle())
  t.same(
    (await allRuns(test)).map((r) => [r.processing_date, r.trigger]),
    [
      ['2026-01-14', 'schedule'],
      ['2026-01-12', 'schedule'],
      ['2026-01-13', 'schedule'],
    ],
  )
  t.equal(manual.pendingCount(), 1, 'the next tick is armed')
  t.same(scheduler.nextRun(), { at: '2026-01-16T12:00:00.000Z', local: '2026-01-16 13:00 Europe/Warsaw' })
})

t.test('a tick while a tick runs is skipped and logged; an API run of the same date is joined', async (t) => {
  const gated = gatedRates()
  const test = await buildTestApp(t, { rates: gated.rates })
  const { scheduler, lines } = schedulerFor(test, { lookbackDays: 2 })
  t.teardown(() => scheduler.stop())

  const first = scheduler.tick()
  const second = await scheduler.tick()
  t.same(second, { skipped: true, runs: [] }, 'the overlapping tick does nothing')
  t.ok(lines.some((l) => l.msg === 'scheduled tick skipped: the previous tick is still running' && l.level === 40), 'and says so in the log')

  // The API asks for the date the tick is running: it gets the tick's run back, not a new one.
  const api = await test.app.inject({ method: 'POST', url: '/batch/run', payload: { date: '2026-11-27' } })
  t.equal(api.statusCode, 202)
  const running = (await allRuns(test))
  t.equal(running.length, 1)
  t.equal(api.json().runs[0].id, running[0]!.id)
  t.equal(api.json().runs[0].trigger, 'schedule')

  gated.release()
  const result = await first
  t.equal(result.skipped, false)
  t.same(result.runs.map((r) => r.processing_date), ['2026-11-27', '2026-11-25', '2026-11-26'])
  const byDate = new Map<string, number>()
  for (const r of (await allRuns(test))) byDate.set(r.processing_date, (byDate.get(r.processing_date) ?? 0) + 1)
  t.same(Object.fromEntries(byDate), { '2026-11-25': 1, '2026-11-26': 1, '2026-11-27': 1 }, 'exactly one run per date')
  t.same(gated.asked, ['2026-11-27', '2026-11-25', '2026-11-26'], 'each date processed once, yesterday first')

  t.same((await scheduler.tick()).skipped, false, 'the next tick, after the first ended, runs')
})

t.test('catch-up after three days down: exactly the missing dates, oldest first, trigger catchup', async (t) => {
  const asked: string[] = []
  const test = await buildTestApp(t, { rates: okRates(asked) })
  // The service ran daily until it went down after processing 2026-11-24.
  await postEvents(test.app, [
    event({ request_id: 'a', cost_usd: '0.5', timestamp: '2026-11-22T10:00:00Z' }),
    event({ request_id: 'b', cost_usd: '0.5', timestamp: '2026-11-26T10:00:00Z' }),
  ])
  for (const day of ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24']) await test.app.services.batch.runDate(day, 'schedule')
  const before = (await allRuns(test)).length
  asked.length = 0

  // Start on 2026-11-28 at 13:00 Warsaw with the default 7 catch-up days: 2026-11-21 … 2026-11-27.
  const { scheduler, manual } = schedulerFor(test, { catchupDays: test.config.BATCH_CATCHUP_DAYS })
  t.teardown(() => scheduler.stop())
  await scheduler.start()
  const caughtUp = await scheduler.catchUpDone()
  t.same(caughtUp.map((r) => [r.processing_date, r.trigger, r.status]), [
    ['2026-11-25', 'catchup', 'succeeded'],
    ['2026-11-26', 'catchup', 'succeeded'],
    ['2026-11-27', 'catchup', 'succeeded'],
  ])
  t.same(asked, ['2026-11-25', '2026-11-26', '2026-11-27'], 'processed oldest first')
  t.equal((await allRuns(test)).length, before + 3, 'nothing that already succeeded ran again')
  t.equal(manual.pendingCount(), 1, 'the timer is armed after recovery')

  // A second start finds nothing to do.
  const again = schedulerFor(test, { catchupDays: 7 })
  await again.scheduler.start()
  t.same(await again.scheduler.catchUpDone(), [])
  again.scheduler.stop()
})

t.test('catch-up retries dates whose PLN is still missing', async (t) => {
  const test = await buildTestApp(t)
  await postEvents(test.app, [
    event({ request_id: 'a', cost_usd: '0.5', timestamp: '2026-11-26T10:00:00Z' }),
  ])
  // Both dates "succeeded" without a rate (noRateProvider): one with usage rows, one without usage.
  await test.app.services.batch.runDate('2026-11-26', 'schedule')
  await test.app.services.batch.runDate('2026-11-27', 'schedule')
  const { scheduler } = schedulerFor(test, { catchupDays: 2 })
  t.teardown(() => scheduler.stop())
  await scheduler.start()
  const runs = await scheduler.catchUpDone()
  t.same(runs.map((r) => [r.processing_date, r.trigger]), [
    ['2026-11-26', 'catchup'],
    ['2026-11-27', 'catchup'],
  ])
})

t.test('start-up recovery abandons runs of dead processes before catch-up, and spares live ones', async (t) => {
  const test = await buildTestApp(t)
  const host = hostname()
  const base = { trigger: 'schedule' as const, dataSource: 'sqlite' as const }
  const fresh = new Date(test.clock.now() - 30_000).toISOString()
  const stale = new Date(test.clock.now() - 10 * 60_000).toISOString()
  const dead = (await test.store.runs.claim({ ...base, date: '2026-11-27', startedAt: fresh, owner: `4242@${host}` })).run
  const live = (await test.store.runs.claim({ ...base, date: '2026-11-26', startedAt: fresh, owner: `4343@${host}` })).run
  const foreignFresh = (await test.store.runs.claim({ ...base, date: '2026-11-25', startedAt: fresh, owner: '1@other-host' })).run
  const foreignStale = (await test.store.runs.claim({ ...base, date: '2026-11-24', startedAt: stale, owner: '1@another-host' })).run
  const previousSelf = (await test.store.runs.claim({ ...base, date: '2026-11-23', startedAt: fresh, owner: test.app.services.batch.owner })).run

  const { scheduler } = schedulerFor(test, { catchupDays: 5, pidAlive: (pid) => pid === 4343 })
  t.teardown(() => scheduler.stop())
  await scheduler.start()
  const statusAtStart = new Map((await allRuns(test)).map((r) => [r.id, r.status]))
  const status = (id: number) => statusAtStart.get(id)
  t.equal(status(dead.id), 'abandoned', 'same host, process gone')
  t.equal(status(live.id), 'running', 'same host, process alive')
  t.equal(status(foreignFresh.id), 'running', 'other host, heartbeat recent')
  t.equal(status(foreignStale.id), 'abandoned', 'other host, heartbeat silent for minutes')
  t.equal(status(previousSelf.id), 'abandoned', 'our own pid@host, but not a run of this process: a previous incarnation')

  // Catch-up redoes the abandoned dates; the dates still owned by live processes are joined, not duplicated.
  const catchUp = scheduler.catchUpDone()
  // Let the live owners "finish" so the joined waits end.
  test.db.$client.prepare("UPDATE influxdb_batch_runs SET status = 'succeeded', finished_at = ? WHERE id IN (?, ?)").run(fresh, live.id, foreignFresh.id)
  const runs = await catchUp
  t.same(runs.map((r) => [r.processing_date, r.trigger]), [
    ['2026-11-23', 'catchup'],
    ['2026-11-24', 'catchup'],
    ['2026-11-25', 'schedule'],
    ['2026-11-26', 'schedule'],
    ['2026-11-27', 'catchup'],
  ])
})

t.test('/batch/status shows the scheduler and the next run in UTC and local time', async (t) => {
  // A database a month old on which nothing ever ran: every day of the catch-up window is due and missing.
  const test = await buildTestApp(t, { dbCreatedMs: Date.parse('2026-10-28T12:00:00Z') })
  const off = await test.app.inject({ url: '/batch/status' })
  t.same(off.json().scheduler, { enabled: false, cron: '0 13 * * *', timezone: TZ, next_run_at: null, next_run_local: null, leader: false })

  // The same database on a replica whose scheduler is on (its timer not started: nothing runs by itself).
  const withScheduler = await buildTestApp(t, { dir: dirname(test.dbPath), env: { BATCH_SCHEDULER_ENABLED: 'true' } })
  const on = await withScheduler.app.inject({ url: '/batch/status' })
  t.equal(on.statusCode, 200)
  t.same(on.json(), {
    scheduler: { enabled: true, cron: '0 13 * * *', timezone: TZ, next_run_at: '2026-11-29T12:00:00.000Z', next_run_local: '2026-11-29 13:00 Europe/Warsaw', leader: true },
    running: [],
    last_success_date: null,
  })
  const health = await withScheduler.app.inject({ url: '/health' })
  // Nothing has run, so the due days of the catch-up window (7 days ending yesterday, whose 13:00 run
  // was due at this very instant) are missing: degraded, and said why.
  t.match(health.json().services.scheduler, {
    status: 'degraded',
    detail: { next_run: { at: '2026-11-29T12:00:00.000Z', local: '2026-11-29 13:00 Europe/Warsaw' } },
  })
  t.same(health.json().services.scheduler.detail.missing_days, ['2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26', '2026-11-27'])

  await withScheduler.services.scheduler.stop()
  const stopped = await withScheduler.app.inject({ url: '/batch/status' })
  t.equal(stopped.json().scheduler.next_run_at, null, 'a stopped scheduler announces no next run')
})
