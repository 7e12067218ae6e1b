// Time is explicit: an injectable clock, and business days as windows of local time in the
// configured time zone. A usage date D covers [D 00:00 local, D+1 00:00 local): 23, 24 or 25 hours.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock that stands still until moved; for tests and deterministic tools. */
export function fixedClock(startMs: number): Clock & { set(ms: number): void; advance(ms: number): void } {
  let current = startMs
  return {
    now: () => current,
    set: (ms) => {
      current = ms
    },
    advance: (ms) => {
      current += ms
    },
  }
}

export interface DayWindow {
  /** The usage date, YYYY-MM-DD. */
  date: string
  /** First instant of the day (inclusive), epoch ms. */
  startMs: number
  /** First instant of the next day (exclusive), epoch ms. */
  endMs: number
}

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/
const MS_PER_DAY = 86_400_000

/** True for a real calendar date written YYYY-MM-DD. */
export function isValidDate(text: string): boolean {
  const m = DATE_TEXT.exec(text)
  if (!m) return false
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const t = new Date(Date.UTC(y, mo - 1, d))
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d
}

function parseDate(text: string): [number, number, number] {
  const m = DATE_TEXT.exec(text)
  if (!m || !isValidDate(text)) throw new RangeError(`not a date (YYYY-MM-DD): ${JSON.stringify(text)}`)
  return [Number(m[1]), Number(m[2]), Number(m[3])]
}

/** Calendar arithmetic on dates; no time zone involved. */
export function addDays(date: string, days: number): string {
  const [y, m, d] = parseDate(date)
  return new Date(Date.UTC(y, m - 1, d) + days * MS_PER_DAY).toISOString().slice(0, 10)
}

/** Whole days from `from` to `to` (to − from). */
export function daysBetween(from: string, to: string): number {
  const [y1, m1, d1] = parseDate(from)
  const [y2, m2, d2] = parseDate(to)
  return Math.round((Date.UTC(y2, m2 - 1, d2) - Date.UTC(y1, m1 - 1, d1)) / MS_PER_DAY)
}

/** Every date from `from` to `to` inclusive, oldest first. */
export function datesInRange(from: string, to: string): string[] {
  const n = daysBetween(from, to)
  const out: string[] = []
  for (let i = 0; i <= n; i++) out.push(addDays(from, i))
  return out
}

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
    formatters.set(timeZone, f)
  }
  return f
}

/** True when the runtime knows the IANA zone name. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone)
    return true
  } catch {
    return false
  }
}

export interface LocalParts {
  year: number
  month: number
  day: number
  hour: number
  minute: number
  second: number
}

/** Wall-clock fields of an instant in a zone. */
export function localParts(instantMs: number, timeZone: string): LocalParts {
  const parts: Record<string, number> = {}
  for (const p of formatterFor(timeZone).formatToParts(new Date(instantMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value)
  }
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  }
}

/** Offset of the zone at an instant: local wall time minus UTC, in ms (Warsaw: +1 h or +2 h). */
export function zoneOffsetMs(instantMs: number, timeZone: string): number {
  const p = localParts(instantMs, timeZone)
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second)
  return asUtc - Math.floor(instantMs / 1000) * 1000
}

/** The local calendar date of an instant, YYYY-MM-DD. */
export function localDateOf(instantMs: number, timeZone: string): string {
  const p = localParts(instantMs, timeZone)
  return `${String(p.year).padStart(4, '0')}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')}`
}

/**
 * The instant at which local wall time `hour:minute` on `date` occurs. A wall time that occurs
 * twice (autumn) maps to the first occurrence; one skipped by a spring jump is pushed forward by
 * the length of the gap (02:30 on the Warsaw spring day → 03:30 CEST), as Temporal's "compatible".
 */
export function localTimeToInstant(date: string, hour: number, minute: number, timeZone: string): number {
  const [y, m, d] = parseDate(date)
  const wall = Date.UTC(y, m - 1, d, hour, minute)
  // The offset can differ on either side of a transition: try the offsets in force a day before
  // and a day after, keep the candidates that really show this wall time, take the earliest.
  const before = zoneOffsetMs(wall - MS_PER_DAY, timeZone)
  const after = zoneOffsetMs(wall + MS_PER_DAY, timeZone)
  const exact = [before, after].map((o) => wall - o).filter((t) => t + zoneOffsetMs(t, timeZone) === wall)
  if (exact.length > 0) return Math.min(...exact)
  return wall - before
}

/** The window of a business day in the zone. */
export function dayWindow(date: string, timeZone: string): DayWindow {
  return {
    date,
    startMs: localTimeToInstant(date, 0, 0, timeZone),
    endMs: localTimeToInstant(addDays(date, 1), 0, 0, timeZone),
  }
}

/** Today's local date according to the clock. */
export function today(clock: Clock, timeZone: string): string {
  const now = clock.now()
  // Every read resolves its default range from today: remember the current local day's window
  // instead of formatting the instant each time (valid for any clock: the window is checked).
  const known = todayWindows.get(timeZone)
  if (known && now >= known.startMs && now < known.endMs) return known.date
  const window = dayWindow(localDateOf(now, timeZone), timeZone)
  todayWindows.set(timeZone, window)
  return window.date
}

const todayWindows = new Map<string, DayWindow>()

/** Yesterday's local date according to the clock. */
export function yesterday(clock: Clock, timeZone: string): string {
  return addDays(today(clock, timeZone), -1)
}
