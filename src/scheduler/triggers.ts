// What makes the daily tick happen (docs/operations.md#scheduler). The server registers a
// toad-scheduler CronJob on the app's scheduler (@fastify/schedule), so the job stops when the app
// closes. Tests that move an injected clock through days use clockTrigger instead: the CronJob's
// croner reads the system time and arms its own timers, which no injected clock can drive
// (CONTRIBUTING.md#design-notes). Both call the same tick.
import { AsyncTask, CronJob, type ToadScheduler } from 'toad-scheduler'
import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import type { CronSchedule } from '../cron.js'
import type { Timers } from './scheduler.js'

/** Calls `tick` at every instant of the cron schedule until stopped. */
export interface TickTrigger {
  start(tick: () => Promise<unknown>): void
  stop(): void
}

/** The id of the daily batch job on the app's scheduler (`app.scheduler.getById`). */
export const DAILY_TICK_JOB_ID = 'usage-batch-daily-tick'

/** Production: a CronJob on the app's toad-scheduler, in the business time zone. */
export function cronJobTrigger(jobs: ToadScheduler, schedule: Pick<CronSchedule, 'expression' | 'timeZone'>, log: Logger): TickTrigger {
  return {
    start(tick) {
      const task = new AsyncTask(DAILY_TICK_JOB_ID, tick, (error) => log.error({ err: error }, 'scheduled tick failed'))
      // No preventOverrun: the tick itself skips, and logs, a tick that comes while the previous one runs.
      // unref: an armed job must not keep a finishing process alive; the listening server does that.
      const job = new CronJob({ cronExpression: schedule.expression.trim(), timezone: schedule.timeZone }, task, { id: DAILY_TICK_JOB_ID, unref: true })
      jobs.addCronJob(job)
    },
    stop() {
      jobs.removeById(DAILY_TICK_JOB_ID)
    },
  }
}

/**
 * The timer never sleeps longer than this: the due time is re-checked against the clock on every
 * wake, so a stepped clock delays a tick by at most this much. (It also keeps delays below
 * setTimeout's 2^31 ms limit.)
 */
const MAX_SLEEP_MS = 15 * 60_000

/** Tests: the ticks of `schedule` as the injected clock reaches them, on the injected timers. */
export function clockTrigger(deps: { clock: Clock; timers: Timers; schedule: CronSchedule }): TickTrigger {
  const { clock, timers, schedule } = deps
  let stopped = false
  let timer: unknown
  /** The tick the timer is armed for, epoch ms. */
  let dueMs: number | null = null
  let tick: () => Promise<unknown> = async () => undefined

  function arm(fromMs: number) {
    if (stopped) return
    dueMs = schedule.next(fromMs)
    if (dueMs !== null) sleepUntilDue()
  }

  function sleepUntilDue() {
    const delayMs = Math.min(Math.max(0, dueMs! - clock.now()), MAX_SLEEP_MS)
    timer = timers.setTimeout(onTimer, delayMs)
    ;(timer as { unref?: () => void } | undefined)?.unref?.()
  }

  function onTimer() {
    timer = undefined
    if (stopped || dueMs === null) return
    const now = clock.now()
    if (now < dueMs) return sleepUntilDue()
    const due = dueMs
    // Arm the following tick before running this one, from the later of "now" and "due", so a late
    // wake-up runs one tick, never a burst of missed ones, and never the same tick twice.
    arm(Math.max(now, due))
    void tick()
  }

  return {
    start(onTick) {
      tick = onTick
      arm(clock.now())
    },
    stop() {
      stopped = true
      if (timer !== undefined) timers.clearTimeout(timer)
      timer = undefined
      dueMs = null
    },
  }
}
