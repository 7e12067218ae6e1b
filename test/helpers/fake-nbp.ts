// A local stand-in for api.nbp.pl (these machines cannot reach it), answering table A USD range
// queries the way NBP does: business days only, 404 "Brak danych" for an empty range, 400 for a bad
// or over-long range. Fault modes let tests break it on purpose.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { freePort } from './ports.js'

export type FakeNbpMode = 'ok' | 'error500' | 'hang' | 'garbage' | 'malformed'

export interface FakeNbpRequest {
  method: string
  /** Path and query as received, e.g. /api/exchangerates/rates/a/usd/2026-11-02/2026-11-11/?format=json */
  url: string
  accept: string | undefined
  authorization: string | undefined
}

export interface FakeNbpOptions {
  mode?: FakeNbpMode
  /** Mid rates to publish instead of the derived ones, by effective date. */
  mids?: Record<string, number>
  /** Tables after this date are not published yet (as NBP before noon); default: all published. */
  lastPublished?: string
}

export interface FakeNbp {
  /** What to give the client as NBP_API_URL: http://127.0.0.1:PORT/api */
  baseUrl: string
  port: number
  /** Every request received, oldest first. */
  requests: FakeNbpRequest[]
  /** requests[].url, for exact assertions. */
  urls(): string[]
  /** The mode for every request from now on (after queued faults are used up). */
  setMode(mode: FakeNbpMode): void
  /** Modes for the next requests, one each, before falling back to the current mode. */
  queue(...modes: FakeNbpMode[]): void
  setLastPublished(date: string | undefined): void
  /** Stops listening and destroys open sockets, hanging ones included. */
  close(): Promise<void>
}

const DAY_MS = 86_400_000
const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/
const RANGE_PATH = /^\/api\/exchangerates\/rates\/a\/usd\/([^/]+)\/([^/]+)\/?$/i
const MAX_RANGE_DAYS = 93

const NOT_FOUND_BODY = '404 NotFound - Not Found - Brak danych'
const BAD_RANGE_BODY = '400 BadRequest - Błędny zakres dat / Invalid date range'
const OVER_LIMIT_BODY = '400 BadRequest - Przekroczony limit 93 dni / Limit of 93 days has been exceeded'

function toUtcMs(date: string): number | undefined {
  const m = DATE_TEXT.exec(date)
  if (!m) return undefined
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const ms = Date.UTC(y, mo - 1, d)
  const t = new Date(ms)
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d ? ms : undefined
}

const fromUtcMs = (ms: number) => new Date(ms).toISOString().slice(0, 10)

/** Easter Sunday (Gregorian), by the anonymous algorithm (Meeus/Jones/Butcher). */
export function easterSunday(year: number): string {
  const a = year % 19
  const b = Math.floor(year / 100)
  const c = year % 100
  const d = Math.floor(b / 4)
  const e = b % 4
  const f = Math.floor((b + 8) / 25)
  const g = Math.floor((b - f + 1) / 3)
  const h = (19 * a + b - d - g + 15) % 30
  const i = Math.floor(c / 4)
  const k = c % 4
  const l = (32 + 2 * e + 2 * i - h - k) % 7
  const m = Math.floor((a + 11 * h + 22 * l) / 451)
  const month = Math.floor((h + l - 7 * m + 114) / 31)
  const day = ((h + l - 7 * m + 114) % 31) + 1
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`
}

const holidayCache = new Map<number, Set<string>>()

/** Polish statutory public holidays of a year (the days NBP publishes no table). */
export function polishHolidays(year: number): Set<string> {
  let set = holidayCache.get(year)
  if (set) return set
  const easter = toUtcMs(easterSunday(year))!
  const fixed = ['01-01', '01-06', '05-01', '05-03', '08-15', '11-01', '11-11', '12-25', '12-26']
  // Christmas Eve became a public holiday in 2025.
  if (year >= 2025) fixed.push('12-24')
  set = new Set([
    ...fixed.map((md) => `${year}-${md}`),
    fromUtcMs(easter),
    fromUtcMs(easter + 1 * DAY_MS), // Easter Monday
    fromUtcMs(easter + 49 * DAY_MS), // Pentecost Sunday
    fromUtcMs(easter + 60 * DAY_MS), // Corpus Christi
  ])
  holidayCache.set(year, set)
  return set
}

export function isPolishBusinessDay(date: string): boolean {
  const ms = toUtcMs(date)
  if (ms === undefined) return false
  const weekday = new Date(ms).getUTCDay()
  return weekday !== 0 && weekday !== 6 && !polishHolidays(Number(date.slice(0, 4))).has(date)
}

/** The table number a business day gets: its ordinal among the year's business days. */
export function fakeTableNo(date: string): string {
  const year = Number(date.slice(0, 4))
  let n = 0
  for (let ms = Date.UTC(year, 0, 1); ms <= toUtcMs(date)!; ms += DAY_MS) {
    if (isPolishBusinessDay(fromUtcMs(ms))) n++
  }
  return `${n}/A/NBP/${year}`
}

/**
 * A deterministic mid with 4 decimals between 3.6000 and 4.0999, different on consecutive days.
 * Integer arithmetic, then one division: the double printed back is exactly the 4-decimal text.
 */
export function fakeMid(date: string): number {
  const day = toUtcMs(date)! / DAY_MS
  return (36_000 + ((day * 7_919) % 5_000)) / 10_000
}

export async function startFakeNbp(options: FakeNbpOptions = {}): Promise<FakeNbp> {
  let mode: FakeNbpMode = options.mode ?? 'ok'
  let lastPublished = options.lastPublished
  const queued: FakeNbpMode[] = []
  const requests: FakeNbpRequest[] = []
  const mids = options.mids ?? {}

  function text(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
    res.end(body)
  }

  function json(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
    res.end(body)
  }

  function answer(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/'
    requests.push({ method: req.method ?? 'GET', url, accept: req.headers.accept, authorization: req.headers.authorization })
    const current = queued.shift() ?? mode
    if (current === 'hang') return
    if (current === 'error500') return text(res, 500, '500 InternalServerError')

    const parsed = new URL(url, 'http://127.0.0.1')
    const m = RANGE_PATH.exec(parsed.pathname)
    if (!m || req.method !== 'GET') return text(res, 404, '404 NotFound')
    const startMs = toUtcMs(m[1]!)
    const endMs = toUtcMs(m[2]!)
    if (startMs === undefined || endMs === undefined || startMs > endMs) return text(res, 400, BAD_RANGE_BODY)
    if ((endMs - startMs) / DAY_MS + 1 > MAX_RANGE_DAYS) return text(res, 400, OVER_LIMIT_BODY)

    if (current === 'garbage') return json(res, 200, '{"table":"A","currency":"dolar amerykański","rates":[{"no":')
    if (current === 'malformed') {
      return json(
        res,
        200,
        JSON.stringify({ table: 'A', currency: 'dolar amerykański', code: 'USD', rates: [{ no: '1/A/NBP/2026', effectiveDate: '2026-01-02', mid: '4.0341' }] }),
      )
    }

    const rates: { no: string; effectiveDate: string; mid: number }[] = []
    for (let ms = startMs; ms <= endMs; ms += DAY_MS) {
      const date = fromUtcMs(ms)
      if (lastPublished !== undefined && date > lastPublished) break
      if (isPolishBusinessDay(date)) rates.push({ no: fakeTableNo(date), effectiveDate: date, mid: mids[date] ?? fakeMid(date) })
    }
    if (rates.length === 0) return text(res, 404, NOT_FOUND_BODY)
    json(res, 200, JSON.stringify({ table: 'A', currency: 'dolar amerykański', code: 'USD', rates }))
  }

  const server = createServer(answer)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo

  return {
    baseUrl: `http://127.0.0.1:${port}/api`,
    port,
    requests,
    urls: () => requests.map((r) => r.url),
    setMode: (m) => {
      mode = m
    },
    queue: (...modes) => {
      queued.push(...modes)
    },
    setLastPublished: (date) => {
      lastPublished = date
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        // A hanging request keeps its socket open; close() alone would wait for it forever.
        server.closeAllConnections()
      }),
  }
}

/** A port on 127.0.0.1 with nothing listening, for "connection refused". */
export const deadPort = freePort
