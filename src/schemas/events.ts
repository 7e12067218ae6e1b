import { Type } from 'typebox'

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
