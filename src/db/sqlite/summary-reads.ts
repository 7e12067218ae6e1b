// Reads of the three summary tables for the /usage API. Column lists come from the row descriptors
// (measures.ts), so each read answers exactly the columns its JSON and CSV carry.
//
// Money stays exact at any size a 64-bit column holds, without making every read pay for BigInt:
// an amount (or a sum) within ±(2^53 - 1) is read as a plain number, and only one beyond that comes
// back as decimal text and is turned into a bigint (better-sqlite3 would otherwise round it to the
// nearest double without a word). SQLite sums integers exactly in 64 bits and raises "integer
// overflow" rather than wrap; a sum past that limit is read again with each amount split into
// units and nano-units, two sums that cannot overflow, joined exactly in BigInt.
import type { Statement } from 'better-sqlite3'
import type { Db } from './open.js'
import { isIntegerOverflow } from './errors.js'
import { CLIENT_SUMS, DAILY, MODEL_SUMS, USER_MODEL_SUMS, type Column, type CompiledRow, type RowOf } from '../../measures.js'
import { usersWithModels, type ClientSumsRow, type DailyRead, type DayCounts, type ModelSumsRow, type SummaryTable, type UserSumsRow } from '../store.js'

const MAX_SAFE = Number.MAX_SAFE_INTEGER

/** An integer expression read as a number while safe, else as decimal text (money.ts nanoFromSql). */
function exactInteger(expression: string): string {
  return `CASE WHEN ${expression} BETWEEN -${MAX_SAFE} AND ${MAX_SAFE} THEN ${expression} ELSE CAST(${expression} AS TEXT) END`
}

/** A column of a stored row, money read exactly. */
function storedColumn(c: Column): string {
  return c.kind === 'money' ? `${exactInteger(c.key)} AS ${c.key}` : c.key
}

/**
 * The sum of a measure over a group. A nullable amount (PLN) sums to null as soon as one summed row
 * lacks it: a partial PLN sum would look like a real total. `split` is the form that cannot overflow.
 */
function summedColumn(c: Column, split: boolean): string {
  let sum: string
  if (c.kind === 'money') {
    sum = split ? `SUM(${c.key} / 1000000000) || ':' || SUM(${c.key} % 1000000000)` : exactInteger(`SUM(${c.key})`)
  } else {
    // TOTAL never overflows; a count past 2^63 is no count this service can produce.
    sum = split ? `TOTAL(${c.key})` : `SUM(${c.key})`
  }
  return `${c.nullable ? `CASE WHEN COUNT(${c.key}) < COUNT(*) THEN NULL ELSE ${sum} END` : sum} AS ${c.key}`
}

interface SumsQuery<Cs extends readonly Column[]> {
  row: CompiledRow<Cs>
  /** The statement text, and the same with every sum split (after an "integer overflow"). */
  sql: string
  splitSql: string
}

/**
 * A grouped read whose select list is the row's columns in order: group columns by name, measures
 * summed, and the named extras (e.g. days_with_usage) as given.
 */
function sumsQuery<Cs extends readonly Column[]>(
  row: CompiledRow<Cs>,
  extras: Record<string, string>,
  rest: (selectList: string) => string,
): SumsQuery<Cs> {
  const select = (split: boolean) =>
    row.columns
      .map((c) => (c.key in extras ? `${extras[c.key]} AS ${c.key}` : c.kind === 'count' || c.kind === 'money' ? summedColumn(c, split) : c.key))
      .join(', ')
  return { row, sql: rest(select(false)), splitSql: rest(select(true)) }
}

const statements = new WeakMap<object, Map<string, Statement>>()

/** Prepared once per connection, rows read as arrays. */
function stmt(db: Db, sql: string): Statement {
  let byText = statements.get(db.$client)
  if (!byText) {
    byText = new Map()
    statements.set(db.$client, byText)
  }
  let s = byText.get(sql)
  if (!s) {
    s = db.$client.prepare(sql).raw(true)
    byText.set(sql, s)
  }
  return s
}

function readSums<Cs extends readonly Column[]>(db: Db, query: SumsQuery<Cs>, params: unknown[]): RowOf<Cs>[] {
  let values: unknown[][]
  try {
    values = stmt(db, query.sql).all(...params) as unknown[][]
  } catch (error) {
    if (!isIntegerOverflow(error)) throw error
    values = stmt(db, query.splitSql).all(...params) as unknown[][]
  }
  const out: RowOf<Cs>[] = new Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = query.row.fromValues(values[i]!)
  return out
}

const DAILY_SQL = `SELECT ${DAILY.columns.map(storedColumn).join(', ')} FROM client_daily_usage
  WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ? ORDER BY usage_date`

/**
 * A client's daily rows over an inclusive date range, oldest first. This is the hot read of the
 * dashboards: one statement prepared per connection, only the columns answered, read as arrays and
 * turned into row objects by a function compiled from the descriptors (better-sqlite3 builds row
 * objects property by property, at about twice the cost of a literal).
 */
export function clientDailyRows(db: Db, clientOrgId: string, from: string, to: string): DailyRead[] {
  const values = stmt(db, DAILY_SQL).all(clientOrgId, from, to) as unknown[][]
  const out: DailyRead[] = new Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = DAILY.fromValues(values[i]!)
  return out
}

const CLIENTS_QUERY = sumsQuery(
  CLIENT_SUMS,
  { days_with_usage: 'COUNT(*)' },
  (select) => `SELECT ${select} FROM client_daily_usage WHERE usage_date >= ? AND usage_date <= ? GROUP BY client_org_id ORDER BY client_org_id`,
)

/** Every client with usage in [from, to], with its sums and days with usage, by client id. */
export function clientsOverview(db: Db, from: string, to: string): ClientSumsRow[] {
  return readSums(db, CLIENTS_QUERY, [from, to])
}

const MODELS_QUERY = sumsQuery(
  MODEL_SUMS,
  {},
  (select) =>
    `SELECT ${select} FROM client_model_daily_usage WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ?
      GROUP BY model ORDER BY SUM(total_tokens) DESC, model`,
)

/** A client's per-model sums over [from, to] (client_model_daily_usage), most tokens first, then by name. */
export function clientModelSums(db: Db, clientOrgId: string, from: string, to: string): ModelSumsRow[] {
  return readSums(db, MODELS_QUERY, [clientOrgId, from, to])
}

const USER_MODELS_QUERY = sumsQuery(
  USER_MODEL_SUMS,
  {},
  (select) =>
    `SELECT ${select} FROM client_user_daily_usage WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ?
      GROUP BY external_user, model ORDER BY external_user, SUM(total_tokens) DESC, model`,
)

/** A client's per-user sums over [from, to] with each user's per-model breakdown (client_user_daily_usage). */
export function clientUserSums(db: Db, clientOrgId: string, from: string, to: string): UserSumsRow[] {
  return usersWithModels(readSums(db, USER_MODELS_QUERY, [clientOrgId, from, to]))
}

/** Distinct users of a client over [from, to]: distinct external_user values, not a sum of daily counts. */
export function distinctUsers(db: Db, clientOrgId: string, from: string, to: string): number {
  const row = stmt(
    db,
    `SELECT COUNT(DISTINCT external_user) FROM client_user_daily_usage
      WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ?`,
  ).get(clientOrgId, from, to) as [number]
  return row[0]
}

/** Days with rows in a summary table over [from, to] (for one client, or all), and how many lack PLN on some row. */
export function dayCounts(
  db: Db,
  table: SummaryTable,
  clientOrgId: string | null,
  from: string,
  to: string,
): DayCounts {
  const [days, missing] = stmt(
    db,
    `SELECT COUNT(DISTINCT usage_date),
            COUNT(DISTINCT CASE WHEN markup_cost_nano_pln IS NULL THEN usage_date END)
       FROM ${table} WHERE (@client IS NULL OR client_org_id = @client) AND usage_date >= @from AND usage_date <= @to`,
  ).get({ client: clientOrgId, from, to }) as [number, number]
  return { days_with_usage: days, days_missing_pln: missing }
}

/** Dates in [from, to] with client rows lacking PLN, and how many clients each. */
export function plnMissingByDate(db: Db, from: string, to: string): Array<{ date: string; clients: number }> {
  return db.$client
    .prepare(
      `SELECT usage_date AS date, count(*) AS clients FROM client_daily_usage
       WHERE markup_cost_nano_pln IS NULL AND usage_date BETWEEN ? AND ? GROUP BY usage_date ORDER BY usage_date`,
    )
    .all(from, to) as Array<{ date: string; clients: number }>
}

/** Every client's marked-up USD cost per day over [from, to]. */
export function dailyMarkupCosts(db: Db, from: string, to: string): Array<{ client_org_id: string; usage_date: string; markup_cost_nano_usd: number }> {
  return db.$client
    .prepare('SELECT client_org_id, usage_date, markup_cost_nano_usd FROM client_daily_usage WHERE usage_date BETWEEN ? AND ?')
    .all(from, to) as Array<{ client_org_id: string; usage_date: string; markup_cost_nano_usd: number }>
}
