// One raw usage record as the service stores it (docs/data-model.md#the-raw-record), and what "the
// same record" means for idempotency: a request_id names one LLM request; the same id with the same
// content is a retry (a duplicate), with other content a conflict (409).

/** One validated raw usage record, ready to store. */
export interface UsageEvent {
  request_id: string
  client_org_id: string
  model: string
  /** Never empty: absent or empty input is stored as `unknown`. */
  external_user: string
  input_tokens: number
  output_tokens: number
  total_tokens: number
  /** Raw provider cost, no markup, nano-USD. */
  cost_nano_usd: bigint
  /** Event instant, epoch ms (sub-millisecond input precision is dropped). */
  occurred_at_ms: number
}

/** A UsageEvent as a driver reads it back: any integer field as a number or a bigint. */
export type StoredUsageEvent = { [K in keyof UsageEvent]: UsageEvent[K] extends number | bigint ? number | bigint : UsageEvent[K] }

/** A record read back from either store, with the exact types of a UsageEvent. */
export function usageEventOf(r: StoredUsageEvent): UsageEvent {
  return {
    request_id: r.request_id,
    client_org_id: r.client_org_id,
    model: r.model,
    external_user: r.external_user,
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
    total_tokens: Number(r.total_tokens),
    cost_nano_usd: BigInt(r.cost_nano_usd),
    occurred_at_ms: Number(r.occurred_at_ms),
  }
}

/** A voided raw record: the original record, why and when it was voided. */
export interface VoidedEvent extends UsageEvent {
  /** When the original record arrived, epoch ms. */
  received_at_ms: number
  reason: string
  voided_at_ms: number
}

/** One record refused by an ingest, by its position in the request. */
export interface EventConflict {
  /** Position of the record in the ingested list (the request's record index). */
  index: number
  field: string
  message: string
}

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
