// When the next scheduled tick falls, from the cron expression in the business time zone.
// croner does the calendar work (DST included); we only ever ask it "next after this instant",
// so the answer depends on the injected clock and never on croner's own timers.
import { Cron } from 'croner'
import { localParts } from './clock.js'

export interface CronSchedule {
  readonly expression: string
  readonly timeZone: string
  /** The first tick strictly after `fromMs` (epoch ms), or null when the expression never fires again. */
  next(fromMs: number): number | null
}

/** A problem with the expression as a sentence, or undefined when it is usable. */
export function cronProblem(expression: string, timeZone: string): string | undefined {
  // Five fields only (minute hour day-of-month month day-of-week): croner would also take a seconds
  // field, which a daily batch has no use for and which the status page could not show.
  if (expression.trim().split(/\s+/).length !== 5) {
    return `must be a five-field cron expression "minute hour day-of-month month day-of-week" such as "0 13 * * *" (got ${JSON.stringify(expression)})`
  }
  try {
    const probe = new Cron(expression, { timezone: timeZone, paused: true })
    probe.nextRun(new Date(0))
    return undefined
  } catch (e) {
    return `not a valid cron expression: ${(e as Error).message} (got ${JSON.stringify(expression)})`
  }
}

export function compileSchedule(expression: string, timeZone: string): CronSchedule {
  const problem = cronProblem(expression, timeZone)
  if (problem) throw new RangeError(`BATCH_SCHEDULE_CRON: ${problem}`)
  // `paused`: croner must never start a timer of its own; this object only answers questions.
  const cron = new Cron(expression.trim(), { timezone: timeZone, paused: true })
  return {
    expression,
    timeZone,
    next(fromMs) {
      const at = cron.nextRun(new Date(fromMs))
      return at ? at.getTime() : null
    },
  }
}

/** "2026-11-29 13:00 Europe/Warsaw": the wall time people in the business zone read. */
export function formatLocal(instantMs: number, timeZone: string): string {
  const p = localParts(instantMs, timeZone)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${String(p.year).padStart(4, '0')}-${two(p.month)}-${two(p.day)} ${two(p.hour)}:${two(p.minute)} ${timeZone}`
}
