// From a validated request record to a UsageEvent: the rules of docs/data-model.md#the-raw-record
// that a JSON schema cannot say.
import type { Static } from 'typebox'
import { isCalendarDate } from './clock.js'
import { DecimalError, parseDecimal, toNano } from './money.js'
import type { UsageEventInput } from './schemas/events.js'
import { differingFields, type UsageEvent } from './usage-event.js'

/** A cost above this is no single LLM request; it also keeps every sum far below 2^53 nano-units. */
const MAX_COST_NANO_USD = 1_000_000n * 1_000_000_000n
/** Events further ahead of the service clock than this are refused: a wrong clock, not usage. */
const MAX_FUTURE_SKEW_MS = 24 * 3600 * 1000
/**
 * Events before this instant are refused: no LLM usage is that old, so a 1970 or year-1000 stamp is
 * a producer's bug (an unset field, seconds read as milliseconds); it would also be a usage date
 * outside the dates the API accepts (clock.ts MIN_DATE).
 */
export const MIN_EVENT_TIME = '2000-01-01T00:00:00Z'
const MIN_EVENT_MS = Date.parse(MIN_EVENT_TIME)

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

export interface FieldError {
  index: number
  field: string
  message: string
}

/** Epoch ms of an RFC 3339 timestamp that names its offset; a message when it is not one. */
export function parseTimestamp(text: string): number | string {
  return parseUtcTimestampFast(text) ?? parseTimestampGeneral(text)
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/** The digits text[at..at+count) as a number, or -1 when one of them is not a digit. */
function digitsAt(text: string, at: number, count: number): number {
  let n = 0
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

/**
 * The form producers send nearly always, `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what toISOString
 * writes), read by character codes: no RegExp, no Date. Undefined for anything else and for
 * anything the general path would refuse, so that path alone decides refusals and their messages;
 * for what it accepts both give the same instant (test/ingest.test.ts compares them).
 */
export function parseUtcTimestampFast(text: string): number | undefined {
  const n = text.length
  if (n < 20 || n > 30 || text.charCodeAt(n - 1) !== 90 /* Z */) return undefined
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) {
    return undefined
  }
  const y = digitsAt(text, 0, 4)
  const mo = digitsAt(text, 5, 2)
  const d = digitsAt(text, 8, 2)
  const h = digitsAt(text, 11, 2)
  const mi = digitsAt(text, 14, 2)
  const s = digitsAt(text, 17, 2)
  let ms = 0
  if (n > 20) {
    // A fraction of 1 to 9 digits; its first three are the milliseconds, as in the general path.
    const fractionDigits = n - 21
    if (text.charCodeAt(19) !== 46 /* . */ || fractionDigits < 1 || digitsAt(text, 20, fractionDigits) < 0) return undefined
    ms = digitsAt(text, 20, Math.min(3, fractionDigits)) * 10 ** Math.max(0, 3 - fractionDigits)
  }
  // Years before 2000 are refused; the general path says why.
  if (y < 2000 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return undefined
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
  if (d > DAYS_IN_MONTH[mo - 1]! + (mo === 2 && leap ? 1 : 0)) return undefined
  return Date.UTC(y, mo - 1, d, h, mi, s, ms)
}

/** Every RFC 3339 form with Z or an offset; a message naming what is wrong otherwise. */
export function parseTimestampGeneral(text: string): number | string {
  const m = RFC3339.exec(text.trim())
  if (!m) {
    return /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text.trim())
      ? 'naive timestamp: add Z or an offset such as +01:00 (a local time without an offset is ambiguous)'
      : 'must be an RFC 3339 timestamp with Z or an offset, e.g. 2026-11-27T13:45:00Z'
  }
  const [, date, hh, mm, ss, frac, z, sign, oh, om] = m
  const [h, mi, s] = [Number(hh), Number(mm), Number(ss)]
  const [y, mo, d] = date!.split('-').map(Number) as [number, number, number]
  if (!isCalendarDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return 'not a real date and time'
  let offsetMin = 0
  if (!z) {
    const [ohn, omn] = [Number(oh), Number(om)]
    if (ohn > 23 || omn > 59) return 'offset out of range'
    offsetMin = (sign === '-' ? -1 : 1) * (ohn * 60 + omn)
  }
  const ms = Number((frac ?? '').padEnd(3, '0').slice(0, 3))
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0–99 as 1900–1999.
  const instant = new Date(0)
  instant.setUTCFullYear(y, mo - 1, d)
  instant.setUTCHours(h, mi, s, ms)
  const epochMs = instant.getTime() - offsetMin * 60_000
  if (epochMs < MIN_EVENT_MS) return `before ${MIN_EVENT_TIME}: not usage of this service (an unset or mis-scaled timestamp?)`
  return epochMs
}

/** With the `u` flag a surrogate pair is one code point, so only a lone surrogate matches. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u
const NO_PROBLEMS: string[] = []

/**
 * What is wrong with a string the service would store or match: ill-formed Unicode always; NUL in
 * an identifier. A lone surrogate (a string cut inside an emoji) has no UTF-8 form: SQLite would keep
 * bytes that read back as another id, InfluxDB would replace it. Refused, never altered.
 */
export function textProblems(value: string, identifier: boolean): string[] {
  // The common case, a clean string, allocates nothing.
  if (!LONE_SURROGATE.test(value) && !(identifier && value.includes('\u0000'))) return NO_PROBLEMS
  const problems: string[] = []
  if (LONE_SURROGATE.test(value)) problems.push('holds ill-formed Unicode (a lone UTF-16 surrogate, e.g. a string cut inside an emoji)')
  if (identifier && value.includes('\u0000')) problems.push('must not contain NUL (U+0000)')
  return problems
}

/** Every string a record may hold: each is checked for ill-formed Unicode, the ids also for NUL. */
const TEXT_FIELDS = ['request_id', 'client_org_id', 'model', 'external_user', 'cost_usd', 'timestamp'] as const

/** Empty or whitespace only; a string starting with anything else is settled by one character. */
function isBlank(text: string): boolean {
  const first = text.charCodeAt(0)
  // Below 0x21: space and control characters; from 0x7f on: other Unicode spaces may start it.
  return Number.isNaN(first) || ((first < 0x21 || first >= 0x7f) && text.trim() === '')
}

/** Digits of a plain decimal written without sign, exponent or spaces: the integer part, at most six. */
const MAX_PLAIN_INTEGER_DIGITS = 6

/**
 * A cost as producers nearly always write it — a plain decimal below one million with at most nine
 * fraction digits, as text or a JSON number — in nano-USD without BigInt arithmetic: every step
 * is an integer below 2^53, so exact. Undefined otherwise (other forms, rounding, refusals), left
 * to parseDecimal and toNano, which give the same amount for what this accepts (test/ingest.test.ts).
 */
export function plainCostNano(cost: string | number): bigint | undefined {
  const text = typeof cost === 'number' ? String(cost) : cost
  const dot = text.indexOf('.')
  const integerDigits = dot < 0 ? text.length : dot
  const fractionDigits = dot < 0 ? 0 : text.length - dot - 1
  if (integerDigits < 1 || integerDigits > MAX_PLAIN_INTEGER_DIGITS || fractionDigits > 9) return undefined
  const integer = digitsAt(text, 0, integerDigits)
  const fraction = fractionDigits === 0 ? 0 : digitsAt(text, dot + 1, fractionDigits)
  if (integer < 0 || fraction < 0) return undefined
  return BigInt(integer * 1_000_000_000 + fraction * 10 ** (9 - fractionDigits))
}

export function normalizeEvents(
  inputs: Static<typeof UsageEventInput>[],
  nowMs: number,
  /** Position of each input in the request, for error messages (default: its position here). */
  positions?: number[],
): { events: UsageEvent[]; errors: FieldError[] } {
  const events: UsageEvent[] = []
  const errors: FieldError[] = []
  // Straight-line per record (no closure, no field list walked by name): this runs 5,000 times per
  // request on the ingest path. The checks and their order are those of the field lists above.
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!
    const index = positions?.[i] ?? i
    const occurred = parseTimestamp(input.timestamp)
    if (typeof occurred === 'string') errors.push({ index, field: 'timestamp', message: occurred })
    else if (occurred > nowMs + MAX_FUTURE_SKEW_MS) errors.push({ index, field: 'timestamp', message: 'more than a day in the future' })

    let cost: bigint | undefined
    try {
      cost = plainCostNano(input.cost_usd) ?? toNano(parseDecimal(input.cost_usd))
      if (cost < 0n) errors.push({ index, field: 'cost_usd', message: 'must not be negative' })
      else if (cost > MAX_COST_NANO_USD) errors.push({ index, field: 'cost_usd', message: 'must be below 1,000,000 USD per request' })
    } catch (e) {
      if (!(e instanceof DecimalError)) throw e
      errors.push({ index, field: 'cost_usd', message: e.message })
    }
    if (isBlank(input.request_id)) errors.push({ index, field: 'request_id', message: 'must not be blank' })
    if (isBlank(input.client_org_id)) errors.push({ index, field: 'client_org_id', message: 'must not be blank' })
    if (isBlank(input.model)) errors.push({ index, field: 'model', message: 'must not be blank' })
    textErrors(errors, index, 'request_id', input.request_id, true)
    textErrors(errors, index, 'client_org_id', input.client_org_id, true)
    textErrors(errors, index, 'model', input.model, true)
    textErrors(errors, index, 'external_user', input.external_user, true)
    textErrors(errors, index, 'cost_usd', input.cost_usd, false)
    textErrors(errors, index, 'timestamp', input.timestamp, false)
    const summed = input.input_tokens + input.output_tokens
    if (input.total_tokens !== undefined && input.total_tokens !== summed) {
      errors.push({ index, field: 'total_tokens', message: `must equal input_tokens + output_tokens (${summed}) when given, got ${input.total_tokens}` })
    }
    if (typeof occurred === 'number' && cost !== undefined) {
      events.push({
        request_id: input.request_id,
        client_org_id: input.client_org_id,
        model: input.model,
        // Blank means "no user" as much as absent does: one `unknown` row, not one per spacing.
        external_user: input.external_user && !isBlank(input.external_user) ? input.external_user : 'unknown',
        input_tokens: input.input_tokens,
        output_tokens: input.output_tokens,
        total_tokens: summed,
        cost_nano_usd: cost,
        occurred_at_ms: occurred,
      })
    }
  }
  return { events, errors }
}

/** Adds textProblems of one field to `errors`; a field that is not a string (absent, a number) has none. */
function textErrors(errors: FieldError[], index: number, field: (typeof TEXT_FIELDS)[number], value: unknown, identifier: boolean): void {
  if (typeof value !== 'string') return
  const problems = textProblems(value, identifier)
  for (let p = 0; p < problems.length; p++) errors.push({ index, field, message: problems[p]! })
}

/**
 * Records of one request that share a request_id but differ in content: the producer sent two
 * different records under one idempotency key, and neither can be the right one. Identical repeats
 * are fine (a retry inside a batch) and count as duplicates. Each conflicting record is listed.
 */
export function inRequestConflicts(events: UsageEvent[]): FieldError[] {
  const first = new Map<string, number>()
  const errors: FieldError[] = []
  const listed = new Set<number>()
  events.forEach((event, index) => {
    const earlier = first.get(event.request_id)
    if (earlier === undefined) {
      first.set(event.request_id, index)
      return
    }
    const differing = differingFields(events[earlier]!, event)
    if (differing.length === 0) return
    const message = `request_id repeats record ${earlier} with different ${differing.join(', ')}`
    if (!listed.has(earlier)) {
      listed.add(earlier)
      errors.push({ index: earlier, field: 'request_id', message: `request_id repeated by record ${index} with different ${differing.join(', ')}` })
    }
    errors.push({ index, field: 'request_id', message })
  })
  return errors.sort((a, b) => a.index - b.index)
}
