// InfluxDB line protocol for raw usage points (docs/influxdb.md#point-layout). Pure functions: no I/O.
import { createHash } from 'node:crypto'
import { nanoToDecimalText } from '../money.js'
import type { UsageEvent } from '../usage-event.js'
import { UnrepresentablePointError } from '../errors.js'

const NS_PER_MS = 1_000_000n

// A value InfluxDB cannot store is the caller's data, not a store failure: UnrepresentablePointError (400).
export { UnrepresentablePointError }

/**
 * The stored timestamp of an event, in ns. The sub-millisecond part is derived from request_id so
 * that a retried event lands on the same point (measurement + tags + time) and overwrites itself,
 * while two requests in the same millisecond almost surely get different points (1 in 10^6 per pair).
 */
export function eventTimestampNs(event: Pick<UsageEvent, 'request_id' | 'occurred_at_ms'>): bigint {
  const digest = createHash('sha256').update(event.request_id, 'utf8').digest()
  const offset = BigInt(digest.readUInt32BE(0) % 1_000_000)
  return BigInt(event.occurred_at_ms) * NS_PER_MS + offset
}

/** Measurement names: commas and spaces are escaped. */
export function escapeMeasurement(name: string): string {
  assertSingleLine(name, 'measurement')
  return name.replace(/[, ]/g, (c) => `\\${c}`)
}

/**
 * Tag keys and values: commas, equals signs and spaces are escaped. Line protocol has no escape
 * for a newline in a tag, and a backslash right before a special character or at the end is
 * ambiguous to the server's unescaping, so such values are refused instead of stored altered.
 */
export function escapeTag(value: string, what: string): string {
  assertSingleLine(value, what)
  if (value.length === 0) throw new UnrepresentablePointError(`${what}: an empty tag value cannot be stored in InfluxDB`)
  if (/\\$|\\[, =]/.test(value)) {
    throw new UnrepresentablePointError(`${what}: a backslash before ',', '=', ' ' or at the end cannot be stored as an InfluxDB tag`)
  }
  return value.replace(/[, =]/g, (c) => `\\${c}`)
}

/** String field values: double quotes and backslashes are escaped; the value is quoted. */
export function quoteFieldString(value: string): string {
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`
}

function assertSingleLine(value: string, what: string): void {
  if (/[\n\r]/.test(value)) throw new UnrepresentablePointError(`${what}: line breaks cannot be stored in InfluxDB line protocol`)
}

/** One event as one line. Tags are written in sorted key order, as InfluxDB stores them. */
export function usagePointLine(measurement: string, event: UsageEvent): string {
  const tags =
    `,client_org_id=${escapeTag(event.client_org_id, 'client_org_id')}` +
    `,external_user=${escapeTag(event.external_user, 'external_user')}` +
    `,model=${escapeTag(event.model, 'model')}`
  assertSingleLine(event.request_id, 'request_id')
  const fields =
    `input_tokens=${integerField(event.input_tokens)},output_tokens=${integerField(event.output_tokens)}` +
    `,total_tokens=${integerField(event.total_tokens)},cost_usd=${nanoToDecimalText(event.cost_nano_usd)}` +
    `,request_id=${quoteFieldString(event.request_id)}`
  return `${escapeMeasurement(measurement)}${tags} ${fields} ${eventTimestampNs(event)}`
}

function integerField(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new UnrepresentablePointError(`token count must be a non-negative integer: ${n}`)
  return `${n}i`
}
