import { Type } from 'typebox'
import { MAX_DATE, MIN_DATE } from '../clock.js'
import { ClientIdParam, DateRangeQuery, DateString, MeasureProperties, PricedProperties } from './common.js'

export const DailyRow = Type.Object(
  {
    usage_date: DateString,
    ...PricedProperties,
    primary_model: Type.String({ description: 'Model with the most tokens that day (ties: first by name)' }),
    unique_users: Type.Integer(),
  },
  {
    title: 'DailyRow',
    examples: [
      {
        usage_date: '2026-11-27',
        total_tokens: 1523400,
        input_tokens: 1201000,
        output_tokens: 322400,
        total_requests: 412,
        raw_cost_usd: 8.123456789,
        markup_cost_usd: 10.560493826,
        markup_cost_pln: 42.602088143,
        markup_rate: 1.3,
        exchange_rate_usd_pln: 4.0341,
        exchange_rate_date: '2026-11-26',
        primary_model: 'anthropic/claude-sonnet-4',
        unique_users: 17,
      },
    ],
  },
)

export const Totals = Type.Object(
  {
    ...MeasureProperties,
    markup_cost_pln: Type.Union([Type.Number(), Type.Null()], {
      description: 'Sum of the rows\' PLN; null when any row in the range has no PLN yet',
    }),
    days_with_usage: Type.Integer(),
    days_missing_pln: Type.Integer({ description: 'Days in the range whose PLN is not known yet' }),
  },
  { title: 'Totals', description: 'Sums of exactly the rows listed' },
)

export const OutputFormat = Type.Enum(['json', 'csv'], {
  description: 'csv answers text/csv (header row, one line per row, exact decimals); so does `Accept: text/csv`',
})

/** from/to of a list endpoint, plus the output format. */
export const RangeQuery = Type.Object({ ...DateRangeQuery, format: Type.Optional(OutputFormat) }, { additionalProperties: false })

export const DailyResponse = Type.Object(
  {
    client_org_id: Type.String(),
    from: DateString,
    to: DateString,
    days: Type.Array(DailyRow),
    totals: Totals,
  },
  { title: 'DailyResponse' },
)

/** Measures summed over several days: no single markup or exchange rate applies. */
export const SummedMeasures = {
  ...MeasureProperties,
  markup_cost_pln: Type.Union([Type.Number(), Type.Null()], {
    description: 'Sum of the PLN of the summed rows (each at its own day\'s rate); null when any of them has no PLN yet',
  }),
}

export const ModelRow = Type.Object(
  { model: Type.String({ examples: ['anthropic/claude-sonnet-4'] }), ...SummedMeasures },
  { title: 'ModelUsage' },
)

export const UserRow = Type.Object(
  {
    external_user: Type.String({ description: 'The user id as sent by the producer; `unknown` when it sent none' }),
    ...SummedMeasures,
    models: Type.Array(ModelRow, { description: 'The user\'s usage per model; the user\'s figures are their sums' }),
  },
  { title: 'UserUsage' },
)

export const UsersResponse = Type.Object(
  { client_org_id: Type.String(), from: DateString, to: DateString, users: Type.Array(UserRow), totals: Totals },
  { title: 'UsersResponse' },
)

export const ModelsResponse = Type.Object(
  { client_org_id: Type.String(), from: DateString, to: DateString, models: Type.Array(ModelRow), totals: Totals },
  { title: 'ModelsResponse' },
)

export const ClientRow = Type.Object(
  { client_org_id: Type.String(), ...SummedMeasures, days_with_usage: Type.Integer() },
  { title: 'ClientUsage' },
)

export const ClientsResponse = Type.Object(
  { from: DateString, to: DateString, clients: Type.Array(ClientRow), totals: Totals },
  { title: 'ClientsResponse' },
)

export const MonthQuery = Type.Object(
  {
    month: Type.Optional(
      Type.String({ format: 'month', description: `YYYY-MM, from ${MIN_DATE.slice(0, 7)} to ${MAX_DATE.slice(0, 7)}; default the current month`, examples: ['2026-11'] }),
    ),
  },
  { additionalProperties: false },
)

const DayFigure = (name: string, figure: ReturnType<typeof Type.Number> | ReturnType<typeof Type.Integer>) =>
  Type.Union([Type.Object({ usage_date: DateString, [name]: figure }), Type.Null()])

export const SummaryResponse = Type.Object(
  {
    client_org_id: Type.String(),
    month: Type.String({ description: 'YYYY-MM' }),
    from: DateString,
    to: DateString,
    totals: Totals,
    days: Type.Array(DailyRow, { description: 'Daily breakdown; each day\'s PLN is at that day\'s stored rate' }),
    average_daily_tokens: Type.Number({ description: 'Total tokens / days with usage (0 without usage), 2 decimals' }),
    average_daily_cost_usd: Type.Number({ description: 'Marked-up USD / days with usage, rounded half-even to 9 decimals' }),
    average_daily_cost_pln: Type.Union([Type.Number(), Type.Null()], {
      description: 'Marked-up PLN / days with usage; null while any day lacks PLN',
    }),
    busiest_day: DayFigure('total_tokens', Type.Integer()),
    highest_cost_day: DayFigure('markup_cost_usd', Type.Number()),
    unique_users: Type.Integer({ description: 'Distinct users over the month (not a sum of daily counts)' }),
    top_models: Type.Array(ModelRow, { description: 'Models by tokens over the month, most first (at most 5)' }),
  },
  { title: 'MonthSummary' },
)

export const TodayResponse = Type.Object(
  {
    client_org_id: Type.String(),
    usage_date: DateString,
    live: Type.Literal(true),
    billed: Type.Literal(false),
    note: Type.String(),
    window_start: Type.String({ format: 'date-time', description: 'Start of today in the business time zone' }),
    as_of: Type.String({ format: 'date-time', description: 'When the figures were aggregated (cached briefly)' }),
    ...PricedProperties,
    primary_model: Type.Union([Type.String(), Type.Null()]),
    unique_users: Type.Integer(),
    models: Type.Array(ModelRow),
  },
  { title: 'TodayUsage' },
)

export { ClientIdParam }
