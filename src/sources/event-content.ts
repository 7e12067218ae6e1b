// What "the same record" means for idempotency (SPEC §3, §9). A request_id names one LLM request;
// the same id with the same content is a retry (a duplicate), with other content a conflict (409).
import createError from '@fastify/error'
import type { UsageEvent } from './types.js'

/**
 * The content of a record: every stored field after normalisation, i.e. cost rounded half-even to
 * nano-USD, the timestamp as an instant in epoch milliseconds (the offset it was written with and
 * sub-millisecond digits do not count), a blank or absent external_user as `unknown`, total_tokens
 * as input + output. The arrival time (received_at) is not content. The names are the JSON fields.
 */
export const CONTENT_FIELDS = [
  ['client_org_id', (e: UsageEvent) => e.client_org_id],
  ['model', (e: UsageEvent) => e.model],
  ['external_user', (e: UsageEvent) => e.external_user],
  ['input_tokens', (e: UsageEvent) => e.input_tokens],
  ['output_tokens', (e: UsageEvent) => e.output_tokens],
  ['total_tokens', (e: UsageEvent) => e.total_tokens],
  ['cost_usd', (e: UsageEvent) => e.cost_nano_usd],
  ['timestamp', (e: UsageEvent) => e.occurred_at_ms],
] as const

/** Content fields in which two records of one request_id differ (empty: the same record). */
export function differingFields(a: UsageEvent, b: UsageEvent): string[] {
  return CONTENT_FIELDS.filter(([, get]) => get(a) !== get(b)).map(([name]) => name)
}

/** Records refused as a whole (409): a request_id stored or voided with other content, or repeated differently. */
export const ConflictingEventsError = createError('USAGE_BATCH_CONFLICTING_EVENTS', '%s', 409)

export interface EventConflict {
  /** Position of the record in the ingested list (the request's record index). */
  index: number
  field: string
  message: string
}

/** The 409 for conflicting records, counting records, listing at most `listed` of them. */
export function conflictError(conflicts: EventConflict[], listed = 100): Error {
  const records = new Set(conflicts.map((c) => c.index)).size
  return Object.assign(new ConflictingEventsError(`${records} record(s) conflict with records already stored or voided, or with each other; nothing was stored`), {
    itemErrors: conflicts.slice(0, listed),
  })
}
