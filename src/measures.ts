// The usage measures and the priced rows, described once. Each row the service stores or answers is
// a list of column descriptors; the staged summary columns, the SQL column lists of the reads, the
// JSON rows (money as numbers or, with `?money=string`, exact decimal text), the CSV header and
// lines, the response schemas and the adding of measures are all derived from these lists. Adding a
// column is one edit here, and a CSV header cannot drift from the JSON keys.
//
// The per-row functions are compiled once from the lists (plain object literals and arrays, as a
// hand-written serialiser would build them): the daily read serialises every row of the dashboards'
// hottest route, and a generic loop over descriptors builds objects property by property at several
// times the cost. Only constant names from the lists below reach the generated code (and SQL), each
// checked to be a plain snake_case identifier and written into the code as a quoted string literal.
import type { CsvValue } from './csv.js'
import { addNano, addNullableNano, nanoFromSql, nanoToDecimalText, nanoToNumber, nanoToStored, type MoneyFormat, type Nano } from './money.js'

/**
 * count: an integer (tokens, requests, users, days). money: an amount in nano-units (`*_nano_*`
 * internally, decimal units in JSON and CSV). rate: an exact decimal stored as text (markup,
 * USD/PLN), a JSON number, CSV text. text: a string (ids, names, dates).
 */
export type ColumnKind = 'count' | 'money' | 'rate' | 'text'

export interface Column<K extends string = string, J extends string = string, Kind extends ColumnKind = ColumnKind, N extends boolean = boolean> {
  /** The row object's field and the SQL column (or alias) it is read from and stored in. */
  readonly key: K
  /** The name in JSON and in the CSV header. */
  readonly json: J
  readonly kind: Kind
  /** Null is a value of the column (e.g. PLN while no rate is known). */
  readonly nullable: N
  /** For the response schema. */
  readonly description?: string
  /** A date (YYYY-MM-DD), for the response schema. */
  readonly date?: boolean
}

const IDENTIFIER = /^[a-z][a-z0-9_]*$/

/** Keys become SQL identifiers (db/): only plain snake_case names are accepted. */
function checkNames(c: Column): void {
  if (!IDENTIFIER.test(c.key) || !IDENTIFIER.test(c.json)) throw new Error(`column names must be snake_case identifiers: ${c.key}, ${c.json}`)
}

function column<K extends string, J extends string, Kind extends ColumnKind, N extends boolean>(
  c: Column<K, J, Kind, N>,
): Column<K, J, Kind, N> {
  checkNames(c)
  return Object.freeze(c)
}

const count = <K extends string>(key: K, description?: string) => column({ key, json: key, kind: 'count', nullable: false, description })
const text = <K extends string>(key: K, description?: string) => column({ key, json: key, kind: 'text', nullable: false, description })

// The measures: what a summary row sums, named as the tables and the JSON contract name them.
const TOTAL_TOKENS = count('total_tokens')
const INPUT_TOKENS = count('input_tokens')
const OUTPUT_TOKENS = count('output_tokens')
const TOTAL_REQUESTS = count('total_requests', 'Raw usage records (LLM requests)')
const RAW_COST = column({ key: 'raw_cost_nano_usd', json: 'raw_cost_usd', kind: 'money', nullable: false, description: 'Raw provider cost, USD, no markup' })
const MARKUP_COST = column({ key: 'markup_cost_nano_usd', json: 'markup_cost_usd', kind: 'money', nullable: false, description: 'Marked-up cost, USD' })
export const MARKUP_COST_PLN = column({
  key: 'markup_cost_nano_pln',
  json: 'markup_cost_pln',
  kind: 'money',
  nullable: true,
  description: "Marked-up cost, PLN at the day's NBP rate; null while no rate is known",
})

/** What raw records add up to: the sums a source aggregates and the batch groups. */
export const RAW_MEASURES = [TOTAL_TOKENS, INPUT_TOKENS, OUTPUT_TOKENS, TOTAL_REQUESTS, RAW_COST] as const
/** Every additive measure of a summary row: the raw sums and their priced amounts. */
export const MEASURES = [...RAW_MEASURES, MARKUP_COST, MARKUP_COST_PLN] as const

/** The rates that priced a row (one day's row; sums over several days have none). */
export const RATES = [
  column({ key: 'markup_rate', json: 'markup_rate', kind: 'rate', nullable: false, description: 'Markup multiplier that priced the row' }),
  column({ key: 'exchange_rate_usd_pln', json: 'exchange_rate_usd_pln', kind: 'rate', nullable: true, description: 'USD/PLN rate that priced the row' }),
  column({
    key: 'exchange_rate_date',
    json: 'exchange_rate_date',
    kind: 'text',
    nullable: true,
    date: true,
    description: 'Effective date of the NBP table used',
  }),
] as const

const DATA_SOURCE = text('data_source')
export const PRIMARY_MODEL = text('primary_model', 'Model with the most tokens that day (ties: first by name)')
export const UNIQUE_USERS = count('unique_users')

/** What every summary table stores beside its key, in the order the staging carries it. */
export const STORED_MEASURES = [...MEASURES, ...RATES, DATA_SOURCE] as const

/** One day of one client (client_daily_usage) as the daily read and the month summary answer it. */
export const DAILY_ROW = [
  column({ key: 'usage_date', json: 'usage_date', kind: 'text', nullable: false, date: true }),
  ...MEASURES,
  ...RATES,
  PRIMARY_MODEL,
  UNIQUE_USERS,
] as const
/** A client's sums over a range (`/usage/clients`). */
export const CLIENT_SUMS_ROW = [text('client_org_id'), ...MEASURES, count('days_with_usage')] as const
/** A model's sums over a range (`/models`, and each user's breakdown in `/users`). */
export const MODEL_SUMS_ROW = [text('model'), ...MEASURES] as const
/** A user's sums over a range (`/users`; the JSON nests the user's models). */
export const USER_SUMS_ROW = [text('external_user', 'The user id as sent by the producer; `unknown` when it sent none'), ...MEASURES] as const
/** One (user, model) line of the `/users` CSV. */
export const USER_MODEL_SUMS_ROW = [USER_SUMS_ROW[0], MODEL_SUMS_ROW[0], ...MEASURES] as const
/** The totals of a list: sums of exactly the rows listed, and the range's day counts. */
export const TOTALS_ROW = [...MEASURES, count('days_with_usage'), count('days_missing_pln', 'Days in the range whose PLN is not known yet')] as const
/** Today's live figures: the measures and the rates that price them. */
export const PRICED_ROW = [...MEASURES, ...RATES] as const

type ValueOf<C extends Column> = C['kind'] extends 'money' ? Nano : C['kind'] extends 'count' ? number : string
type JsonValueOf<C extends Column> = C['kind'] extends 'money' ? number | string : C['kind'] extends 'text' ? string : number
type OrNull<C extends Column, V> = C['nullable'] extends true ? V | null : V

/** The row object of a column list: keyed by `key`, money in nano-units. */
export type RowOf<Cs extends readonly Column[]> = { [C in Cs[number] as C['key']]: OrNull<C, ValueOf<C>> }
/** The JSON object of a column list: keyed by `json`. */
export type JsonOf<Cs extends readonly Column[]> = { [C in Cs[number] as C['json']]: OrNull<C, JsonValueOf<C>> }

export type Measures = RowOf<typeof MEASURES>
export type RawMeasures = RowOf<typeof RAW_MEASURES>

/** A count as bound into a summary column: only an exact integer is stored. */
function countToStored(value: number, key: string): number {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${key} of ${value} is not an integer below 2^53`)
  return value
}

const helpers = { nanoToNumber, nanoToDecimalText, nanoFromSql, nanoToStored, countToStored, addNano, addNullableNano }

/** Builds `(args) => body` with the helpers above in scope as `h`. */
function compile<F>(args: string, body: string): F {
  return new Function('h', `'use strict'; return (${args}) => ${body}`)(helpers) as F
}

const q = (name: string) => JSON.stringify(name)
const field = (c: Column) => `r[${q(c.key)}]`
const orNull = (c: Column, value: string, expression: string) => (c.nullable ? `(${value} === null ? null : ${expression})` : expression)

function jsonExpression(c: Column, money: MoneyFormat): string {
  const v = field(c)
  switch (c.kind) {
    case 'money':
      return orNull(c, v, money === 'string' ? `h.nanoToDecimalText(${v})` : `h.nanoToNumber(${v})`)
    case 'rate':
      return orNull(c, v, `Number(${v})`)
    default:
      return v
  }
}

function csvExpression(c: Column): string {
  const v = field(c)
  return c.kind === 'money' ? orNull(c, v, `h.nanoToDecimalText(${v})`) : v
}

function storedExpression(c: Column): string {
  const v = field(c)
  if (c.kind === 'money') return orNull(c, v, `h.nanoToStored(${v}, ${q(c.key)})`)
  if (c.kind === 'count') return orNull(c, v, `h.countToStored(${v}, ${q(c.key)})`)
  return v
}

export interface CompiledRow<Cs extends readonly Column[]> {
  readonly columns: Cs
  /** JSON keys in order: also the CSV header. */
  readonly header: readonly string[]
  toJson(row: RowOf<Cs>, money: MoneyFormat): JsonOf<Cs>
  toCsv(row: RowOf<Cs>): CsvValue[]
  /** A row from values in column order (an SQL result read as an array; money as `nanoFromSql` takes it). */
  fromValues(values: readonly unknown[]): RowOf<Cs>
  /** The values bound into a staged summary row, in column order; refuses what a column cannot hold exactly. */
  toStored(row: RowOf<Cs>): Array<string | number | bigint | null>
}

export function compileRow<const Cs extends readonly Column[]>(columns: Cs): CompiledRow<Cs> {
  for (const c of columns) checkNames(c)
  const object = (expression: (c: Column, i: number) => string) => `({ ${columns.map((c, i) => `${q(c.json)}: ${expression(c, i)}`).join(', ')} })`
  const array = (expression: (c: Column) => string) => `[${columns.map(expression).join(', ')}]`
  const asNumbers = compile<(r: RowOf<Cs>) => JsonOf<Cs>>('r', object((c) => jsonExpression(c, 'number')))
  const asStrings = compile<(r: RowOf<Cs>) => JsonOf<Cs>>('r', object((c) => jsonExpression(c, 'string')))
  const fromValues = compile<(v: readonly unknown[]) => RowOf<Cs>>(
    'v',
    `({ ${columns.map((c, i) => `${q(c.key)}: ${c.kind === 'money' ? `(v[${i}] === null ? null : h.nanoFromSql(v[${i}]))` : `v[${i}]`}`).join(', ')} })`,
  )
  return {
    columns,
    header: columns.map((c) => c.json),
    toJson: (row, money) => (money === 'string' ? asStrings(row) : asNumbers(row)),
    toCsv: compile('r', array(csvExpression)),
    fromValues,
    toStored: compile('r', array(storedExpression)),
  }
}

export const DAILY = compileRow(DAILY_ROW)
export const CLIENT_SUMS = compileRow(CLIENT_SUMS_ROW)
export const MODEL_SUMS = compileRow(MODEL_SUMS_ROW)
export const USER_SUMS = compileRow(USER_SUMS_ROW)
export const USER_MODEL_SUMS = compileRow(USER_MODEL_SUMS_ROW)
export const TOTALS = compileRow(TOTALS_ROW)
export const PRICED = compileRow(PRICED_ROW)

/**
 * Adds `part`'s measures into `into` (and returns it): counts as numbers, money exactly (addNano),
 * PLN null as soon as one part lacks it. Raw sums carry no priced amounts: a measure `into` does not
 * carry is left out, so the one function adds raw and priced sums alike.
 */
export const addMeasures: <T extends RawMeasures>(into: T, part: T) => T = compile(
  'into, part',
  `{ ${MEASURES.map((c) => {
    const k = q(c.key)
    const add =
      c.kind === 'money'
        ? `into[${k}] = h.${c.nullable ? 'addNullableNano' : 'addNano'}(into[${k}], part[${k}])`
        : `into[${k}] += part[${k}]`
    return (RAW_MEASURES as readonly Column[]).includes(c) ? `${add};` : `if (${k} in into) ${add};`
  }).join(' ')} return into }`,
)

export function zeroRawMeasures(): RawMeasures {
  return { total_tokens: 0, input_tokens: 0, output_tokens: 0, total_requests: 0, raw_cost_nano_usd: 0 }
}

export function zeroMeasures(): Measures {
  return { ...zeroRawMeasures(), markup_cost_nano_usd: 0, markup_cost_nano_pln: 0 }
}

/** Exact sums of sums; PLN null when any part lacks it. */
export function sumMeasures(parts: Iterable<Measures>): Measures {
  const out = zeroMeasures()
  for (const p of parts) addMeasures(out, p)
  return out
}
