import { Type, type TInteger, type TNumber, type TString, type TUnsafe } from 'typebox'
import {
  CLIENT_SUMS_ROW,
  DAILY_ROW,
  MARKUP_COST_PLN,
  MODEL_SUMS_ROW,
  PRICED_ROW,
  TOTALS_ROW,
  USER_SUMS_ROW,
  type Column,
} from '../measures.js'
import { MAX_DATE, MIN_DATE } from '../clock.js'
import { ClientIdParam, DateRangeQuery, DateString } from './common.js'

/** The text form of an amount under `?money=string`: exact, 9 decimals. */
const MONEY_TEXT_PATTERN = '^-?[0-9]+\\.[0-9]{9}$'

/**
 * An amount: a JSON number with at most 9 decimals (exact below one million), or with
 * `?money=string` its exact decimal text. Declared as one multi-type schema rather than a union:
 * the serialiser then picks by `typeof` instead of validating each value against each branch.
 */
export function Money<N extends boolean = false>(description: string, nullable?: N): TUnsafe<N extends true ? number | string | null : number | string> {
  return Type.Unsafe({
    type: nullable ? ['number', 'string', 'null'] : ['number', 'string'],
    pattern: MONEY_TEXT_PATTERN,
    description: `${description}. A number (at most 9 decimals), or with \`?money=string\` exact decimal text (9 decimals)`,
  })
}

type SchemaOf<C extends Column> = C['kind'] extends 'count'
  ? TInteger
  : C['kind'] extends 'money'
    ? TUnsafe<C['nullable'] extends true ? number | string | null : number | string>
    : C['kind'] extends 'rate'
      ? C['nullable'] extends true
        ? TUnsafe<number | null>
        : TNumber
      : C['nullable'] extends true
        ? TUnsafe<string | null>
        : TString

type PropertiesOf<Cs extends readonly Column[]> = { [C in Cs[number] as C['json']]: SchemaOf<C> }

function columnSchema(c: Column, description = c.description) {
  const described = description === undefined ? {} : { description }
  switch (c.kind) {
    case 'count':
      return Type.Integer(described)
    case 'money':
      return Money(description ?? c.json, c.nullable)
    case 'rate':
      return c.nullable ? Type.Unsafe({ type: ['number', 'null'], ...described }) : Type.Number(described)
    case 'text': {
      const format = c.date ? { format: 'date', ...(description === undefined ? { description: 'A calendar date, YYYY-MM-DD' } : {}) } : {}
      return c.nullable ? Type.Unsafe({ type: ['string', 'null'], ...format, ...described }) : Type.String({ ...format, ...described })
    }
  }
}

/** The JSON properties of a row, from its column descriptors; `descriptions` override per context. */
function columnProperties<const Cs extends readonly Column[]>(columns: Cs, descriptions: Partial<Record<string, string>> = {}): PropertiesOf<Cs> {
  return Object.fromEntries(columns.map((c) => [c.json, columnSchema(c, descriptions[c.json] ?? c.description)])) as PropertiesOf<Cs>
}

/** `?money=string`: every money field as exact decimal text. */
export const MoneyQuery = {
  money: Type.Optional(
    Type.Enum(['number', 'string'], {
      description: 'How money fields are answered: JSON numbers with at most 9 decimals (default), or `string`: exact decimal text with 9 decimals',
    }),
  ),
}

export const DailyRow = Type.Object(
  columnProperties(DAILY_ROW),
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
  columnProperties(TOTALS_ROW, { [MARKUP_COST_PLN.json]: "Sum of the rows' PLN; null when any row in the range has no PLN yet" }),
  { title: 'Totals', description: 'Sums of exactly the rows listed' },
)

export const OutputFormat = Type.Enum(['json', 'csv'], {
  description: 'csv answers text/csv (header row, one line per row, exact decimals); so does `Accept: text/csv`',
})

/** from/to of a list endpoint, plus the output format. */
export const RangeQuery = Type.Object({ ...DateRangeQuery, format: Type.Optional(OutputFormat), ...MoneyQuery }, { additionalProperties: false })

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
const SUMMED = {
  [MARKUP_COST_PLN.json]: "Sum of the PLN of the summed rows (each at its own day's rate); null when any of them has no PLN yet",
}

export const ModelRow = Type.Object(columnProperties(MODEL_SUMS_ROW, { model: 'Model id as sent by the producer', ...SUMMED }), {
  title: 'ModelUsage',
})

export const UserRow = Type.Object(
  {
    ...columnProperties(USER_SUMS_ROW, SUMMED),
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

export const ClientUsage = Type.Object(columnProperties(CLIENT_SUMS_ROW, SUMMED), { title: 'ClientUsage' })

export const ClientsResponse = Type.Object(
  { from: DateString, to: DateString, clients: Type.Array(ClientUsage), totals: Totals },
  { title: 'ClientsResponse' },
)

export const MonthQuery = Type.Object(
  {
    month: Type.Optional(
      Type.String({ format: 'month', description: `YYYY-MM, from ${MIN_DATE.slice(0, 7)} to ${MAX_DATE.slice(0, 7)}; default the current month`, examples: ['2026-11'] }),
    ),
    ...MoneyQuery,
  },
  { additionalProperties: false },
)

/** /today took no query before `money`: other parameters (a cache buster, say) are still let through. */
export const TodayQuery = Type.Object(MoneyQuery)

const DayFigure = <S extends TInteger | TUnsafe<number | string>>(name: string, figure: S) =>
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
    average_daily_cost_usd: Money('Marked-up USD / days with usage, rounded half-even to 9 decimals'),
    average_daily_cost_pln: Money('Marked-up PLN / days with usage; null while any day lacks PLN', true),
    busiest_day: DayFigure('total_tokens', Type.Integer()),
    highest_cost_day: DayFigure('markup_cost_usd', Money('Marked-up USD of the costliest day')),
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
    ...columnProperties(PRICED_ROW),
    primary_model: Type.Union([Type.String(), Type.Null()]),
    unique_users: Type.Integer(),
    models: Type.Array(ModelRow),
  },
  { title: 'TodayUsage' },
)

export { ClientIdParam }
