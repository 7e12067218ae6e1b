import { Type } from 'typebox'
import { DateString } from './common.js'

export const PricingEntry = Type.Object(
  {
    effective_from: DateString,
    markup_rate: Type.Number({ description: 'Markup multiplier from effective_from on (until the next entry)' }),
    note: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'PricingEntry' },
)

export const PricingResponse = Type.Object(
  {
    client_org_id: Type.String(),
    default_markup_rate: Type.Number({ description: 'USAGE_MARKUP_MULTIPLIER: applies to days before the first entry' }),
    current_markup_rate: Type.Number({ description: 'The markup in force today (business time zone)' }),
    history: Type.Array(PricingEntry, { description: 'Every entry, oldest effective date first' }),
  },
  { title: 'ClientPricing' },
)

export const PricingBody = Type.Object(
  {
    markup_rate: Type.Union([Type.Number(), Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*$' })], {
      description: 'Exact decimal between 1 and 10, as a JSON number or a decimal string',
      examples: ['1.25'],
    }),
    effective_from: DateString,
    note: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false, examples: [{ markup_rate: '1.25', effective_from: '2026-12-01', note: 'renegotiated contract' }] },
)

export const PricingCreated = Type.Object(
  { client_org_id: Type.String(), entry: PricingEntry },
  { title: 'PricingCreated' },
)
