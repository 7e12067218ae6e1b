// The NBP public API, table A, USD. Only transport and validation live here; which table prices
// which usage date is decided in resolve.ts.
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import { daysBetween, isValidDate } from '../clock.js'
import { DecimalError, canonicalDecimal } from '../money.js'
import { describe } from '../errors.js'
import { redactText, redactUrl } from '../redact.js'

/** One published table A mid rate, the mid already as exact decimal text ("4.0341"). */
export interface NbpRate {
  /** Table number, e.g. "237/A/NBP/2024". */
  no: string
  effectiveDate: string
  mid: string
}

export type NbpErrorCode = 'NBP_NETWORK' | 'NBP_TIMEOUT' | 'NBP_HTTP' | 'NBP_INVALID_RESPONSE'

export class NbpError extends Error {
  override name = 'NbpError'
  constructor(
    message: string,
    readonly code: NbpErrorCode,
    /** Attempts made, including the first. */
    readonly attempts: number,
    readonly status?: number,
    options?: { cause?: unknown; url?: string },
  ) {
    super(redactText(message), options)
    this.url = options?.url === undefined ? undefined : redactUrl(options.url)
  }

  /** The URL asked, credentials redacted: what a log line may name. */
  readonly url: string | undefined
}

export interface NbpClientOptions {
  /** e.g. https://api.nbp.pl/api (no trailing path beyond /api). */
  baseUrl: string
  /** Limit for one attempt, headers and body included. */
  timeoutMs: number
  /** Retries after the first attempt (0 = one attempt only). */
  maxRetries: number
  /** Backoff cap for the first retry; doubles per retry up to maxDelayMs. */
  baseDelayMs?: number
  maxDelayMs?: number
  sleep?: (ms: number) => Promise<void>
  /** [0, 1), for the jitter. */
  random?: () => number
  fetch?: typeof globalThis.fetch
}

export interface NbpClient {
  /**
   * Table A USD mid rates published in [start, end] (inclusive), ascending. An empty list means
   * NBP published no table in the range (its 404 "Brak danych"); every other failure throws NbpError.
   */
  fetchUsdRates(start: string, end: string): Promise<NbpRate[]>
}

const DEFAULT_BASE_DELAY_MS = 250
const DEFAULT_MAX_DELAY_MS = 5_000
/** NBP refuses longer ranges with 400. */
export const NBP_MAX_RANGE_DAYS = 93
/** NBP's body for "no table in this range"; any other 404 means a wrong URL, not an empty range. */
const NO_DATA_MARKER = 'Brak danych'
/** Enough of an error body to be useful in a log line without carrying a whole HTML page. */
const BODY_EXCERPT_CHARS = 200

const DATE_PATTERN = '^\\d{4}-\\d{2}-\\d{2}$'

const NbpUsdRatesSchema = Type.Object({
  table: Type.Literal('A'),
  currency: Type.String(),
  code: Type.Literal('USD'),
  rates: Type.Array(
    Type.Object({
      no: Type.String({ pattern: '^\\d{1,3}/A/NBP/\\d{4}$' }),
      effectiveDate: Type.String({ pattern: DATE_PATTERN }),
      mid: Type.Number({ exclusiveMinimum: 0 }),
    }),
  ),
})

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

class RetryableFailure extends Error {
  constructor(
    message: string,
    readonly code: NbpErrorCode,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/**
 * fetch refuses a URL with user:password@ (and quotes it whole in its error): credentials given in
 * NBP_API_URL (a mirror behind basic auth) travel in an Authorization header instead.
 */
export function splitCredentials(url: string): { url: string; authorization?: string } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { url }
  }
  if (!parsed.username && !parsed.password) return { url }
  const userinfo = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`
  parsed.username = ''
  parsed.password = ''
  return { url: parsed.toString(), authorization: `Basic ${Buffer.from(userinfo, 'utf8').toString('base64')}` }
}

export function createNbpClient(options: NbpClientOptions): NbpClient {
  const { url: plainBaseUrl, authorization } = splitCredentials(options.baseUrl)
  const baseUrl = plainBaseUrl.replace(/\/+$/, '')
  /** What messages name: the configured URL as written, credentials redacted. */
  const shownBaseUrl = redactUrl(options.baseUrl.replace(/\/+$/, ''))
  const doFetch = options.fetch ?? globalThis.fetch
  const sleep = options.sleep ?? sleepFor
  const random = options.random ?? Math.random
  const baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS
  const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS
  const maxAttempts = Math.max(0, Math.floor(options.maxRetries)) + 1

  /** One attempt. Throws RetryableFailure for transient trouble, NbpError (attempts unset) otherwise. */
  async function attempt(url: string, start: string, end: string): Promise<NbpRate[]> {
    let response: Response
    let body: string
    try {
      // The signal also covers reading the body: a server that sends headers and then stalls
      // must not hold the batch longer than the timeout.
      response = await doFetch(url, {
        headers: { Accept: 'application/json', ...(authorization ? { Authorization: authorization } : {}) },
        signal: AbortSignal.timeout(options.timeoutMs),
      })
      body = await response.text()
    } catch (e) {
      if (isTimeout(e)) throw new RetryableFailure(`no answer within ${options.timeoutMs} ms`, 'NBP_TIMEOUT', undefined, { cause: e })
      throw new RetryableFailure(`network error: ${describe(e)}`, 'NBP_NETWORK', undefined, { cause: e })
    }
    if (response.status === 404 && body.includes(NO_DATA_MARKER)) return []
    if (response.status >= 500 || response.status === 429) {
      throw new RetryableFailure(`HTTP ${response.status}: ${excerpt(body)}`, 'NBP_HTTP', response.status)
    }
    if (response.status !== 200) {
      throw new NbpError(`HTTP ${response.status}: ${excerpt(body)}`, 'NBP_HTTP', 1, response.status)
    }
    return parseRates(body, start, end)
  }

  return {
    async fetchUsdRates(start, end) {
      // A caller's mistake, not NBP trouble: NBP would refuse it with 400 anyway.
      if (!isValidDate(start) || !isValidDate(end) || start > end || daysBetween(start, end) + 1 > NBP_MAX_RANGE_DAYS) {
        throw new RangeError(`invalid NBP date range ${start}..${end} (at most ${NBP_MAX_RANGE_DAYS} days)`)
      }
      const path = `/exchangerates/rates/a/usd/${start}/${end}/?format=json`
      const url = `${baseUrl}${path}`
      const shownUrl = `${shownBaseUrl}${path}`
      for (let n = 1; ; n++) {
        try {
          return await attempt(url, start, end)
        } catch (e) {
          if (e instanceof NbpError) {
            throw new NbpError(`NBP ${start}..${end}: ${e.message}`, e.code, n, e.status, { cause: e.cause, url: shownUrl })
          }
          if (!(e instanceof RetryableFailure)) throw e
          if (n >= maxAttempts) {
            throw new NbpError(`NBP ${start}..${end}: ${e.message} (after ${n} attempt${n === 1 ? '' : 's'})`, e.code, n, e.status, {
              cause: e.cause,
              url: shownUrl,
            })
          }
          // Full jitter: replicas that failed together do not retry together.
          const capMs = Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1))
          await sleep(Math.floor(random() * capMs))
        }
      }
    },
  }
}

/** Strict reading of a 200 body; anything unexpected is an error, never a rate. */
function parseRates(body: string, start: string, end: string): NbpRate[] {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (e) {
    throw new NbpError(`response is not JSON: ${excerpt(body)}`, 'NBP_INVALID_RESPONSE', 1, 200, { cause: e })
  }
  if (!Value.Check(NbpUsdRatesSchema, json)) {
    const first = [...Value.Errors(NbpUsdRatesSchema, json)][0]
    const where = first ? ` (${first.instancePath || '/'}: ${first.message})` : ''
    throw new NbpError(`response has an unexpected shape${where}`, 'NBP_INVALID_RESPONSE', 1, 200)
  }
  const rates: NbpRate[] = []
  let previous = ''
  for (const r of json.rates) {
    // The pattern admits 2024-02-31; the range check below relies on real dates.
    if (!isValidDate(r.effectiveDate) || r.effectiveDate < start || r.effectiveDate > end || r.effectiveDate <= previous) {
      throw new NbpError(
        `response has effectiveDate ${r.effectiveDate} outside ${start}..${end} or out of order`,
        'NBP_INVALID_RESPONSE',
        1,
        200,
      )
    }
    previous = r.effectiveDate
    if (!r.no.endsWith(`/${r.effectiveDate.slice(0, 4)}`)) {
      throw new NbpError(`response has table ${r.no} for ${r.effectiveDate}`, 'NBP_INVALID_RESPONSE', 1, 200)
    }
    let mid: string
    try {
      // String(mid) is the shortest text that reads back as the same double: for 4.0341 it is
      // "4.0341", the decimal NBP published, not the binary approximation.
      mid = canonicalDecimal(r.mid)
    } catch (e) {
      if (!(e instanceof DecimalError)) throw e
      throw new NbpError(`response has mid ${r.mid} that is no decimal`, 'NBP_INVALID_RESPONSE', 1, 200, { cause: e })
    }
    rates.push({ no: r.no, effectiveDate: r.effectiveDate, mid })
  }
  return rates
}

function isTimeout(e: unknown): boolean {
  return e instanceof Error && (e.name === 'TimeoutError' || (e.name === 'AbortError' && e.cause instanceof Error && e.cause.name === 'TimeoutError'))
}

function excerpt(body: string): string {
  const oneLine = body.replace(/\s+/g, ' ').trim()
  return oneLine.length > BODY_EXCERPT_CHARS ? `${oneLine.slice(0, BODY_EXCERPT_CHARS)}…` : oneLine || '(empty body)'
}
