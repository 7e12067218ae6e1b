import { Type } from 'typebox'
import { RATE_POLICIES, RATE_SOURCES } from '../db/enums.js'
import { DateString } from './common.js'

export const RateRow = Type.Object(
  {
    usage_date: DateString,
    rate: Type.Number({ description: 'USD/PLN mid rate that prices this usage date', examples: [4.0341] }),
    effective_date: DateString,
    table_no: Type.Union([Type.String(), Type.Null()], { description: 'NBP table number, e.g. 237/A/NBP/2024; null for a manual rate' }),
    source: Type.Enum([...RATE_SOURCES]),
    policy: Type.Enum([...RATE_POLICIES]),
    fetched_at: Type.String({ format: 'date-time' }),
  },
  { title: 'ExchangeRate' },
)

export const RatesQuery = Type.Object(
  { from: Type.Optional(DateString), to: Type.Optional(DateString) },
  { additionalProperties: false },
)

export const RatesResponse = Type.Object({ rates: Type.Array(RateRow) })

export const RateDateParam = Type.Object({ date: DateString })

export const ManualRateBody = Type.Object(
  {
    rate: Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 100 }), Type.String({ pattern: '^\\s*\\d{1,3}(\\.\\d{1,6})?\\s*$' })], {
      description: 'USD/PLN rate, at most 6 decimals (NBP publishes 4)',
      examples: ['4.0341'],
    }),
    note: Type.Optional(Type.String({ maxLength: 500, description: 'Why the rate was set by hand' })),
  },
  { additionalProperties: false },
)
