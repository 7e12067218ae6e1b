import { Type } from 'typebox'
import { ClientIdParam, DateRangeQuery, DateString, MeasureProperties, PricedProperties } from './common.js'

export const DailyRow = Type.Object(
  {
    usage_date: DateString,
    ...PricedProperties,
    primary_model: Type.String({ description: 'Model with the most tokens that day (ties: first by name)' }),
    unique_users: Type.Integer(),
  },
  { title: 'DailyRow' },
)

export const Totals = Type.Object(
  {
    ...MeasureProperties,
    markup_cost_pln: Type.Union([Type.Number(), Type.Null()], {
      description: 'Sum of the rows\' PLN; null when any row in the range has no PLN yet',
    }),
    days_with_usage: Type.Integer(),
    days_missing_pln: Type.Integer({ description: 'Rows whose PLN is not known yet' }),
  },
  { title: 'Totals', description: 'Sums of exactly the rows listed' },
)

export const RangeQuery = Type.Object({ ...DateRangeQuery }, { additionalProperties: false })

export const DailyResponse = Type.Object({
  client_org_id: Type.String(),
  from: DateString,
  to: DateString,
  days: Type.Array(DailyRow),
  totals: Totals,
})

export { ClientIdParam }
