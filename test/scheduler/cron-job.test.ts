// The production trigger: the daily tick is a toad-scheduler CronJob on the app's scheduler
// (@fastify/schedule), in the business time zone, stopped by services.stop() (SIGTERM) and by
// app.close(). Its croner reads the system time and arms real timers, which no injected clock
// reaches (CONTRIBUTING.md#design-notes): here node:test's mock timers move Date and setTimeout,
// and the services read the same (mocked) system time.
import t from 'tap'
import { mock } from 'node:test'
import { CronJob, JobStatus } from 'toad-scheduler'
import { buildTestApp } from '../helpers/app.js'
import { DAILY_TICK_JOB_ID } from '../../src/scheduler/triggers.js'
import type { RateProvider } from '../../src/rates/types.js'

const HOUR_MS = 3_600_000
const systemTime = { now: () => Date.now() }
const noRate: RateProvider = { resolveUsdPlnRate: async () => ({ ok: false, reason: 'test: no rate' }) }
const env = (cron: string) => ({ BATCH_SCHEDULER_ENABLED: 'true', BATCH_SCHEDULE_CRON: cron, BATCH_CATCHUP_DAYS: '0', BATCH_LOOKBACK_DAYS: '0' })

/**
 * Mocks Date and setTimeout from `startIso` (a whole hour) for `body`, and always gives the real ones
 * back. Time moves an hour at a time, so each step ends on the tick instant of an hourly-aligned cron:
 * the job's runs, claimed after its first await, read that instant.
 */
async function withMockedTime(startIso: string, body: (advanceHours: (hours: number, settle: () => Promise<void>) => Promise<void>) => Promise<void>) {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse(startIso) })
  try {
    await body(async (hours, settle) => {
      for (let h = 0; h < hours; h++) {
        mock.timers.tick(HOUR_MS)
        // setImmediate is real: the job's async task starts, then its batch days finish.
        await new Promise((resolve) => setImmediate(resolve))
        await settle()
      }
    })
  } finally {
    mock.timers.reset()
  }
}

t.test('the daily CronJob on app.scheduler fires at 13:00 Warsaw across the spring DST change, and stops on app.close()', async (t) => {
  const test = await buildTestApp(t, { env: env('0 13 * * *'), rates: noRate, deps: { clock: systemTime } })
  const { app, services } = test
  t.notOk(app.scheduler.existsById(DAILY_TICK_JOB_ID), 'no job before the scheduler starts')

  await withMockedTime('2026-03-27T13:00:00Z', async (advanceHours) => {
    await services.scheduler.start(app.scheduler)
    const job = app.scheduler.getById(DAILY_TICK_JOB_ID)
    t.ok(job instanceof CronJob, 'the job is a toad-scheduler CronJob')
    t.equal(job.getStatus(), JobStatus.RUNNING)
    t.same(services.scheduler.nextRun(), { at: '2026-03-28T12:00:00.000Z', local: '2026-03-28 13:00 Europe/Warsaw' })

    await advanceHours(48, () => services.scheduler.idle())
    const runs = (await test.store.runs.list({ limit: 10 })).reverse()
    t.same(
      runs.map((r) => [r.started_at, r.processing_date, r.trigger]),
      [
        ['2026-03-28T12:00:00.000Z', '2026-03-27', 'schedule'],
        ['2026-03-29T11:00:00.000Z', '2026-03-28', 'schedule'],
      ],
      'one run of yesterday per tick, at 13:00 CET and then 13:00 CEST',
    )

    await app.close()
    t.equal(job.getStatus(), JobStatus.STOPPED, 'app.close() stopped the job')
    await advanceHours(48, () => services.scheduler.idle())
    t.equal((await test.store.runs.list({ limit: 10 })).length, 2, 'no tick after the app closed')
  })
})

t.test('a wall time in the DST gap fires when the status page said it would', async (t) => {
  const test = await buildTestApp(t, { env: env('30 2 * * *'), rates: noRate, deps: { clock: systemTime } })
  const { app, services } = test
  await withMockedTime('2026-03-28T12:00:00Z', async (advanceHours) => {
    await services.scheduler.start(app.scheduler)
    // 02:30 does not exist on 2026-03-29 in Warsaw: /batch/status and the CronJob share one croner.
    const announced = services.scheduler.nextRun()
    t.same(announced, { at: '2026-03-29T01:00:00.000Z', local: '2026-03-29 03:00 Europe/Warsaw' })
    await advanceHours(24, () => services.scheduler.idle())
    const runs = await test.store.runs.list({ limit: 10 })
    t.same(runs.map((r) => r.started_at), [announced!.at], 'the job fired once, at the announced instant')
  })
})

t.test('services.stop() (SIGTERM) takes the job off app.scheduler; a disabled scheduler registers none', async (t) => {
  const test = await buildTestApp(t, { env: env('0 13 * * *'), rates: noRate })
  await test.services.scheduler.start(test.app.scheduler)
  t.ok(test.app.scheduler.existsById(DAILY_TICK_JOB_ID))
  await test.services.stop(0)
  t.notOk(test.app.scheduler.existsById(DAILY_TICK_JOB_ID), 'the job is gone')
  t.equal(test.services.scheduler.nextRun(), null)

  const disabled = await buildTestApp(t, { rates: noRate })
  await disabled.services.scheduler.start(disabled.app.scheduler)
  t.same(disabled.app.scheduler.getAllJobs(), [], 'BATCH_SCHEDULER_ENABLED=false: no job')
})
