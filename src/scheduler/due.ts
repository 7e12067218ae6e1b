// Which dates the service owes: of the catch-up window (the BATCH_CATCHUP_DAYS dates ending
// yesterday), those whose scheduled run is past and that have no successful run. One notion for
// the `usage_batch_days_behind` gauge and for /health's `missing_days`, so the two never disagree.
import { addDays, datesInRange, dayWindow, yesterday, type Clock } from '../clock.js'
import type { Store } from '../db/store.js'
import { FOREIGN_HOST_STALE_AFTER_MS } from './recovery.js'
import type { CronSchedule } from '../cron.js'

export interface DueDeps {
  store: Store
  clock: Clock
  timeZone: string
  /** BATCH_SCHEDULE_CRON in BUSINESS_TIMEZONE, compiled. */
  schedule: CronSchedule
  catchupDays: number
}

/** The catch-up window, oldest first: `days` dates ending yesterday (empty for 0). */
export function catchUpWindow(clock: Clock, timeZone: string, days: number): string[] {
  if (days <= 0) return []
  const last = yesterday(clock, timeZone)
  return datesInRange(addDays(last, -(days - 1)), last)
}

/**
 * When a date falls due: the first tick of the schedule at or after the date's end (local midnight).
 * With `0 13 * * *` in Europe/Warsaw, 2026-11-27 is due at 2026-11-28 13:00 Warsaw time.
 */
export function dueAt(schedule: CronSchedule, date: string, timeZone: string): number | null {
  // Asked for the same few dates on every scrape and probe; the answer never changes.
  let known = dueTimes.get(schedule)
  if (!known) dueTimes.set(schedule, (known = new Map()))
  const key = `${timeZone} ${date}`
  if (!known.has(key)) known.set(key, schedule.next(dayWindow(date, timeZone).endMs - 1))
  return known.get(key)!
}

const dueTimes = new WeakMap<CronSchedule, Map<string, number | null>>()

/**
 * Dates of the catch-up window that are due and not done, oldest first. A date counts when:
 * its scheduled time has passed; that time came after the database existed (days due before it are
 * history the service never owed, e.g. on a fresh install); no run of it succeeded; and no run of it
 * is in progress (running with a heartbeat fresher than the stale-run limit — a run whose process
 * died stops beating and counts again). On a healthy service this is empty at every hour of the day.
 */
export async function datesBehind(deps: DueDeps): Promise<string[]> {
  const nowMs = deps.clock.now()
  const createdMs = await deps.store.metadata.createdAt()
  const due = catchUpWindow(deps.clock, deps.timeZone, deps.catchupDays).filter((date) => {
    const at = dueAt(deps.schedule, date, deps.timeZone)
    return at !== null && at <= nowMs && (createdMs === null || at > createdMs)
  })
  if (due.length === 0) return []
  const succeeded = await deps.store.runs.datesWithSuccess(due)
  const inProgress = await deps.store.runs.datesInProgress(due, new Date(nowMs - FOREIGN_HOST_STALE_AFTER_MS).toISOString())
  return due.filter((d) => !succeeded.has(d) && !inProgress.has(d))
}
