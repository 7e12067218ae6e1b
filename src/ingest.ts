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

/**
 * What is wrong with a string the service would store or match: ill-formed Unicode always; NUL in
 * an identifier. A lone surrogate (a string cut inside an emoji) has no UTF-8 form: SQLite would keep
 * bytes that read back as another id, InfluxDB would replace it. Refused, never altered.
 */
export function textProblems(value: string, identifier: boolean): string[] {
  const problems: string[] = []
  if (LONE_SURROGATE.test(value)) problems.push('holds ill-formed Unicode (a lone UTF-16 surrogate, e.g. a string cut inside an emoji)')
  if (identifier && value.includes('\u0000')) problems.push('must not contain NUL (U+0000)')
  return problems
}

/** Every string a record may hold: each is checked for ill-formed Unicode, the ids also for NUL. */
const TEXT_FIELDS = ['request_id', 'client_org_id', 'model', 'external_user', 'cost_usd', 'timestamp'] as const

export function normalizeEvents(
  inputs: Static<typeof UsageEventInput>[],
  nowMs: number,
  /** Position of each input in the request, for error messages (default: its position here). */
  positions?: number[],
): { events: UsageEvent[]; errors: FieldError[] } {
  const events: UsageEvent[] = []
  const errors: FieldError[] = []
  inputs.forEach((input, i) => {
    const index = positions?.[i] ?? i
    const fail = (field: string, message: string) => errors.push({ index, field, message })
    const occurred = parseTimestamp(input.timestamp)
    if (typeof occurred === 'string') fail('timestamp', occurred)
    else if (occurred > nowMs + MAX_FUTURE_SKEW_MS) fail('timestamp', 'more than a day in the future')

    let cost: bigint | undefined
    try {
      cost = toNano(parseDecimal(input.cost_usd))
      if (cost < 0n) fail('cost_usd', 'must not be negative')
      else if (cost > MAX_COST_NANO_USD) fail('cost_usd', 'must be below 1,000,000 USD per request')
    } catch (e) {
      if (!(e instanceof DecimalError)) throw e
      fail('cost_usd', e.message)
    }
    for (const field of ['request_id', 'client_org_id', 'model'] as const) {
      if (input[field].trim() === '') fail(field, 'must not be blank')
    }
    for (const field of TEXT_FIELDS) {
      const value = input[field]
      if (typeof value !== 'string') continue
      for (const problem of textProblems(value, field !== 'cost_usd' && field !== 'timestamp')) fail(field, problem)
    }
    const summed = input.input_tokens + input.output_tokens
    if (input.total_tokens !== undefined && input.total_tokens !== summed) {
      fail('total_tokens', `must equal input_tokens + output_tokens (${summed}) when given, got ${input.total_tokens}`)
    }
    if (typeof occurred === 'number' && cost !== undefined) {
      events.push({
        request_id: input.request_id,
        client_org_id: input.client_org_id,
        model: input.model,
        // Blank means "no user" as much as absent does: one `unknown` row, not one per spacing.
        external_user: input.external_user && input.external_user.trim() !== '' ? input.external_user : 'unknown',
        input_tokens: input.input_tokens,
        output_tokens: input.output_tokens,
        total_tokens: summed,
        cost_nano_usd: cost,
        occurred_at_ms: occurred,
      })
    }
  })
  return { events, errors }
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
