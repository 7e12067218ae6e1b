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
const MONTH_TEXT = /^(\d{4})-(\d{2})$/
const MS_PER_DAY = 86_400_000

/**
 * The dates the service accepts anywhere: paths, queries, bodies, the CLI. Usage before 2000 is no
 * usage of this product (ingest refuses such timestamps too), and four-digit years keep dates
 * sortable as text; within the range every date, its neighbours and its day window are computed
 * exactly (JavaScript's Date maps years 0–99 to 1900–1999, which is why they are out).
 */
export const MIN_DATE = '2000-01-01'
export const MAX_DATE = '9999-12-31'
/** How every message says what a date must be. */
export const DATE_RULE = `a date YYYY-MM-DD from ${MIN_DATE} to ${MAX_DATE}`
export const MONTH_RULE = `a month YYYY-MM from ${MIN_DATE.slice(0, 7)} to ${MAX_DATE.slice(0, 7)}`

/** True when year-month-day exists in the proleptic Gregorian calendar (any year, 0–99 included). */
export function isCalendarDate(y: number, mo: number, d: number): boolean {
  const t = new Date(0)
  t.setUTCFullYear(y, mo - 1, d)
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d
}

/** The one date parser: [y, m, d] of a real calendar date YYYY-MM-DD within MIN_DATE..MAX_DATE. */
export function parseDateText(text: string): [number, number, number] | undefined {
  const m = DATE_TEXT.exec(text)
  if (!m || text < MIN_DATE || text > MAX_DATE) return undefined
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  return isCalendarDate(y, mo, d) ? [y, mo, d] : undefined
}

/** True for a real calendar date written YYYY-MM-DD within MIN_DATE..MAX_DATE. */
export function isValidDate(text: string): boolean {
  return parseDateText(text) !== undefined
}

/** True for a month written YYYY-MM within the months of MIN_DATE..MAX_DATE. */
export function isValidMonth(text: string): boolean {
  const m = MONTH_TEXT.exec(text)
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 12 && text >= MIN_DATE.slice(0, 7) && text <= MAX_DATE.slice(0, 7)
}

function parseDate(text: string): [number, number, number] {
  const parts = parseDateText(text)
  if (!parts) throw new RangeError(`not ${DATE_RULE}: ${JSON.stringify(text)}`)
  return parts
}

function formatUtcDate(ms: number): string {
  const t = new Date(ms)
  return `${String(t.getUTCFullYear()).padStart(4, '0')}-${String(t.getUTCMonth() + 1).padStart(2, '0')}-${String(t.getUTCDate()).padStart(2, '0')}`
}

/**
 * Calendar arithmetic on dates; no time zone involved. The result may fall outside the accepted
 * range (the day after MAX_DATE is 10000-01-01): callers compare it by number of days, not as text.
 */
export function addDays(date: string, days: number): string {
  const [y, m, d] = parseDate(date)
  return formatUtcDate(Date.UTC(y, m - 1, d) + days * MS_PER_DAY)
}

/** Whole days from `from` to `to` (to − from). */
export function daysBetween(from: string, to: string): number {
  const [y1, m1, d1] = parseDate(from)
  const [y2, m2, d2] = parseDate(to)
  return Math.round((Date.UTC(y2, m2 - 1, d2) - Date.UTC(y1, m1 - 1, d1)) / MS_PER_DAY)
}

/** The first and the last date of a month YYYY-MM. */
export function monthBounds(month: string): { from: string; to: string } {
  if (!isValidMonth(month)) throw new RangeError(`not ${MONTH_RULE}: ${JSON.stringify(month)}`)
  const [y, m] = month.split('-').map(Number) as [number, number]
  // Day 0 of the next month is the last day of this one, December 9999 included.
  return { from: `${month}-01`, to: formatUtcDate(Date.UTC(y, m, 0)) }
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
  const [y, m, d] = calendarParts(date)
  const wall = Date.UTC(y, m - 1, d, hour, minute)
  // The offset can differ on either side of a transition: try the offsets in force a day before
  // and a day after, keep the candidates that really show this wall time, take the earliest.
  const before = zoneOffsetMs(wall - MS_PER_DAY, timeZone)
  const after = zoneOffsetMs(wall + MS_PER_DAY, timeZone)
  const exact = [before, after].map((o) => wall - o).filter((t) => t + zoneOffsetMs(t, timeZone) === wall)
  if (exact.length > 0) return Math.min(...exact)
  return wall - before
}

/** Date parts for window arithmetic, which also needs the day after MAX_DATE (its end). */
function calendarParts(date: string): [number, number, number] {
  const m = /^(\d{4,5})-(\d{2})-(\d{2})$/.exec(date)
  if (!m || !isCalendarDate(Number(m[1]), Number(m[2]), Number(m[3])) || Number(m[1]) < Number(MIN_DATE.slice(0, 4))) {
    throw new RangeError(`not ${DATE_RULE}: ${JSON.stringify(date)}`)
  }
  return [Number(m[1]), Number(m[2]), Number(m[3])]
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
