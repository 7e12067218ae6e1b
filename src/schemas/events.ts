import { Type } from 'typebox'
import { DateRangeQuery, DateString, ErrorResponse } from './common.js'
import { Money, MoneyQuery } from './usage.js'

export const MAX_EVENTS_PER_REQUEST = 5_000
/** 5,000 records of a few hundred bytes each fit comfortably; anything larger is refused with 413. */
export const EVENTS_BODY_LIMIT_BYTES = 8 * 1024 * 1024
const MAX_TOKENS = 1_000_000_000_000

export const UsageEventInput = Type.Object(
  {
    request_id: Type.String({ minLength: 1, maxLength: 200, description: 'Idempotency key: a retried record is counted once' }),
    client_org_id: Type.String({ minLength: 1, maxLength: 200 }),
    model: Type.String({ minLength: 1, maxLength: 200, examples: ['anthropic/claude-sonnet-4'] }),
    external_user: Type.Optional(
      Type.Union([Type.String({ maxLength: 200 }), Type.Null()], { description: 'Absent or empty is stored as `unknown`' }),
    ),
    input_tokens: Type.Integer({ minimum: 0, maximum: MAX_TOKENS }),
    output_tokens: Type.Integer({ minimum: 0, maximum: MAX_TOKENS }),
    total_tokens: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TOKENS, description: 'Defaults to input + output' })),
    cost_usd: Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^\\s*(\\d+(\\.\\d*)?|\\.\\d+)([eE][+-]?\\d+)?\\s*$', maxLength: 64 })], {
      description: 'Raw provider cost in USD, no markup: a number or a decimal string; rounded half-even to 9 decimals',
      examples: ['0.000150', 0.00015],
    }),
    timestamp: Type.String({
      maxLength: 64,
      description: 'RFC 3339 with Z or an offset; naive timestamps are rejected',
      examples: ['2026-11-27T13:45:00.123Z', '2026-11-27T14:45:00+01:00'],
    }),
  },
  { additionalProperties: false, title: 'UsageEvent' },
)

export const IngestBody = Type.Object(
  {
    events: Type.Array(UsageEventInput, { minItems: 1, maxItems: MAX_EVENTS_PER_REQUEST }),
  },
  { additionalProperties: false },
)

export const IngestResponse = Type.Object({
  accepted: Type.Integer({ description: 'Records newly stored' }),
  duplicates: Type.Integer({ description: 'Records whose request_id was already stored (or repeated in this request)' }),
})

export const MAX_VOIDS_PER_REQUEST = 5_000

export const VoidBody = Type.Object(
  {
    request_ids: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
      minItems: 1,
      maxItems: MAX_VOIDS_PER_REQUEST,
      description: 'request_id of each raw record to void',
    }),
    reason: Type.String({ minLength: 1, maxLength: 500, description: 'Why: kept with each voided record' }),
  },
  { additionalProperties: false, examples: [{ request_ids: ['req-1'], reason: 'test traffic billed to acme by mistake' }] },
)

export const VoidResponse = Type.Object(
  {
    voided: Type.Integer({ description: 'Records voided by this request' }),
    not_found: Type.Array(Type.String(), { description: 'Request ids with no stored record (never ingested, or removed by retention)' }),
    already_voided: Type.Array(Type.String(), { description: 'Request ids voided before: nothing changed for them' }),
    usage_dates: Type.Array(DateString, { description: 'Business dates of the voided records: rerun them (POST /batch/run) to correct their summaries' }),
  },
  { title: 'VoidResult' },
)

export const ExternalDeletesResponse = Type.Object(
  {
    ...ErrorResponse.properties,
    dialect: Type.Enum(['influxql', 'flux']),
    deletes: Type.Array(
      Type.Object({
        request_id: Type.String(),
        time: Type.String({ description: "The point's timestamp, RFC 3339 with nanoseconds" }),
        statement: Type.Optional(Type.String({ description: 'InfluxQL: the DELETE statement for this point' })),
        predicate: Type.Optional(Type.String({ description: 'Flux dialect (InfluxDB 2.x): the delete predicate (POST /api/v2/delete, `influx delete`)' })),
        start: Type.Optional(Type.String({ description: 'Flux dialect: start of the delete (inclusive)' })),
        stop: Type.Optional(Type.String({ description: 'Flux dialect: stop of the delete (inclusive)' })),
      }),
    ),
    not_found: Type.Array(Type.String()),
  },
  {
    title: 'ExternalDeletes',
    description: 'InfluxDB-first mode: the service cannot void; these deletes remove exactly the points of the records, identifiers and literals escaped',
  },
)

export const VoidedQuery = Type.Object({ ...DateRangeQuery, ...MoneyQuery }, { additionalProperties: false })

export const VoidedRecord = Type.Object(
  {
    request_id: Type.String(),
    usage_date: DateString,
    reason: Type.String(),
    voided_at: Type.String({ format: 'date-time' }),
    record: Type.Object({
      client_org_id: Type.String(),
      model: Type.String(),
      external_user: Type.String(),
      input_tokens: Type.Integer(),
      output_tokens: Type.Integer(),
      total_tokens: Type.Integer(),
      cost_usd: Money('Raw provider cost, USD, no markup'),
      timestamp: Type.String({ format: 'date-time', description: 'The event instant (UTC)' }),
      received_at: Type.String({ format: 'date-time', description: 'When the service stored it' }),
    }),
  },
  { title: 'VoidedRecord' },
)

export const VoidedResponse = Type.Object(
  {
    from: DateString,
    to: DateString,
    voids: Type.Array(VoidedRecord, { description: 'Voided records whose business date lies in from..to, oldest first' }),
  },
  { title: 'VoidedResponse' },
)
