// The in-process scheduler (docs/operations.md#scheduler): the daily tick in the business time
// zone, start-up recovery and catch-up. What fires the tick is a trigger (triggers.ts): a CronJob on
// the app's scheduler in production. Every date goes through the batch service, whose claim in the
// store is the only single-flight mechanism. Ticks and catch-up run only while this process is the
// leader (always, with one process per store).
import type { Logger } from 'pino'
import { addDays, datesInRange, yesterday, type Clock } from '../clock.js'
import type { BatchRunRow, Store } from '../db/store.js'
import type { BatchService } from '../batch/service.js'
import { compileSchedule, formatLocal } from '../cron.js'
import { abandonStaleRuns, datesToCatchUp } from './recovery.js'
import { clockTrigger, type TickTrigger } from './triggers.js'

/** The two timer functions the scheduler's tests and the leader use; tests pass a manual implementation. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

export interface SchedulerDeps {
  batch: BatchService
  store: Store
  clock: Clock
  log: Logger
  cron: string
  timeZone: string
  lookbackDays: number
  catchupDays: number
  /** Tests: the injected timers that, with the clock, fire the ticks when start() is given no trigger. */
  timers?: Timers
  /** Whether this process may run ticks now (the scheduler leader); default always. */
  isLeader?: () => boolean
  /** After each tick's runs have closed (retention, alerts). Never allowed to break the tick. */
  afterTick?: () => Promise<unknown>
  /** For tests of stale-run recovery; default: this host and process.kill(pid, 0). */
  host?: string
  pidAlive?: (pid: number) => boolean
}

export interface TickResult {
  /** True when the tick did nothing because the previous one was still running. */
  skipped: boolean
  /** The closed runs of the tick (a joined run is the other entry point's run). */
  runs: BatchRunRow[]
}

/** What /batch/status and /health read of the scheduler. */
export interface SchedulerHandle {
  /** BATCH_SCHEDULER_ENABLED: this replica runs a scheduler (a stopped one stays enabled). */
  enabled(): boolean
  /** The next tick as an instant (ISO, UTC) and as local wall time in the business zone; null when none will come. */
  nextRun(): { at: string; local: string } | null
  /** Whether this process runs the ticks (the scheduler leader). */
  isLeader(): boolean
}

export function createScheduler(deps: SchedulerDeps) {
  const { batch, clock, timeZone } = deps
  const isLeader = deps.isLeader ?? (() => true)
  const log = deps.log.child({ component: 'scheduler' })
  const schedule = compileSchedule(deps.cron, timeZone)

  let started = false
  let stopped = false
  let trigger: TickTrigger | undefined
  let currentTick: Promise<BatchRunRow[]> | null = null
  let catchUp: Promise<BatchRunRow[]> | null = null
  /** A catch-up taken on with the leadership is claiming or running its dates. */
  let catchUpRunning = false

  function recover() {
    return abandonStaleRuns({ store: deps.store, clock, log, batch, host: deps.host, pidAlive: deps.pidAlive })
  }

  async function runTick(): Promise<BatchRunRow[]> {
    // A CLI run or another replica may have died since the last look; its dates would otherwise
    // be joined forever.
    await recover()
    const last = yesterday(clock, timeZone)
    const runs: BatchRunRow[] = []
    // Yesterday first: it is the new billing day; the lookback re-runs only absorb late records.
    for (const s of await batch.startMany([last], 'schedule')) runs.push(await s.done)
    if (deps.lookbackDays > 0 && !stopped) {
      const lookback = datesInRange(addDays(last, -deps.lookbackDays), addDays(last, -1))
      for (const s of await batch.startMany(lookback, 'schedule')) runs.push(await s.done)
    }
    return runs
  }

  /** One scheduled tick. A tick while the previous one runs is skipped (and logged), not queued. */
  async function tick(): Promise<TickResult> {
    if (currentTick) {
      log.warn('scheduled tick skipped: the previous tick is still running')
      return { skipped: true, runs: [] }
    }
    if (!isLeader()) {
      log.info('scheduled tick left to the leader: this replica is not the scheduler leader')
      return { skipped: true, runs: [] }
    }
    const at = clock.now()
    log.info({ at: new Date(at).toISOString() }, 'scheduled tick')
    currentTick = runTick()
    try {
      const runs = await currentTick
      log.info({ runs: runs.map((r) => ({ id: r.id, day: r.processing_date, status: r.status, trigger: r.trigger })) }, 'scheduled tick done')
      if (deps.afterTick && !stopped) {
        try {
          await deps.afterTick()
        } catch (error) {
          log.error({ err: error }, 'after-tick work failed')
        }
      }
      return { skipped: false, runs }
    } catch (error) {
      // ShuttingDownError during stop, or a database error: logged, never an unhandled rejection.
      log.error({ err: error }, 'scheduled tick failed')
      return { skipped: false, runs: [] }
    } finally {
      currentTick = null
    }
  }

  /** Claims the dates to catch up; resolves once they are claimed, with the promise of their closed runs. */
  async function claimCatchUp(): Promise<{ done: Promise<BatchRunRow[]> }> {
    const last = yesterday(clock, timeZone)
    const dates = await datesToCatchUp(deps.store, last, deps.catchupDays)
    if (dates.length === 0) {
      log.info({ days: deps.catchupDays, last }, 'catch-up: every recent date has a successful run')
      return { done: Promise.resolve([]) }
    }
    log.info({ dates }, 'catch-up started')
    // startMany claims every date before it resolves, so a tick or an API call arriving later joins these runs.
    const startedRuns = await batch.startMany(dates, 'catchup')
    const done = Promise.all(startedRuns.map((s) => s.done)).then((closed) => {
      log.info({ runs: closed.map((r) => ({ id: r.id, day: r.processing_date, status: r.status })) }, 'catch-up done')
      return closed
    })
    return { done }
  }

  const handle: Omit<SchedulerHandle, 'enabled'> = {
    nextRun() {
      if (stopped) return null
      const at = schedule.next(clock.now())
      return at === null ? null : { at: new Date(at).toISOString(), local: formatLocal(at, timeZone) }
    },
    isLeader,
  }

  return {
    ...handle,

    /**
     * Recovery, then catch-up claims its dates, then the trigger: both come before the first tick can
     * fire. Resolves once catch-up has claimed its dates (it runs them in the background).
     * `ticks`: what fires the ticks (the app's CronJob); tests omit it and drive the injected timers.
     */
    async start(ticks?: TickTrigger): Promise<void> {
      if (started) return
      const chosen = ticks ?? (deps.timers ? clockTrigger({ clock, timers: deps.timers, schedule }) : undefined)
      if (!chosen) throw new Error('scheduler.start: no trigger (the app\'s CronJob) and no injected timers')
      started = true
      try {
        await recover()
        const { done } = isLeader() ? await claimCatchUp() : { done: Promise.resolve([]) }
        catchUp = done.catch((error: unknown) => {
          log.error({ err: error }, 'catch-up failed')
          return []
        })
      } catch (error) {
        log.error({ err: error }, 'catch-up failed')
        catchUp = Promise.resolve([])
      }
      if (stopped) return
      const next = schedule.next(clock.now())
      if (next === null) {
        log.warn({ cron: deps.cron }, 'the cron expression has no further ticks; the scheduler is idle')
        return
      }
      trigger = chosen
      trigger.start(async () => {
        if (!stopped) await tick()
      })
      log.info({ cron: deps.cron, timeZone, next: formatLocal(next, timeZone) }, 'scheduler started')
    },

    tick,

    /**
     * This replica just became the scheduler leader: dead runs are marked abandoned and the
     * catch-up a starting leader runs is run now (in the background; catchUpDone() follows it).
     * Nothing when stopped, or while a catch-up is still going.
     */
    async catchUpAsLeader(): Promise<void> {
      if (!started || stopped || catchUpRunning) return
      catchUpRunning = true
      try {
        await recover()
        if (stopped || !isLeader()) return
        const { done } = await claimCatchUp()
        catchUp = done.catch((error: unknown) => {
          log.error({ err: error }, 'catch-up failed')
          return []
        })
        await catchUp
      } catch (error) {
        log.error({ err: error }, 'catch-up failed')
      } finally {
        catchUpRunning = false
      }
    },

    /** Resolves with the catch-up's runs once it is done (immediately with [] before start). */
    catchUpDone: (): Promise<BatchRunRow[]> => catchUp ?? Promise.resolve([]),

    /** Resolves when neither catch-up nor a tick is running. */
    async idle(): Promise<void> {
      await catchUp
      while (currentTick) await currentTick.catch(() => undefined)
    },

    /** No new tick after this; running days are the batch service's to finish or interrupt. */
    stop(): void {
      stopped = true
      trigger?.stop()
      trigger = undefined
    },
  }
}
