// Read-side aggregation over the three summary tables for the /usage API. Sums are done by
// SQLite over integer columns (exact int64) and read back as bigint, so nano-unit money never
// passes through a float; totals of sums are added in bigint as well.
import type { Statement } from 'better-sqlite3'
import type { Db } from './open.js'

/** Summed measures of a set of summary rows. */
export interface MeasureSums {
  total_tokens: number
  input_tokens: number
  output_tokens: number
  total_requests: number
  raw_cost_nano_usd: bigint
  markup_cost_nano_usd: bigint
  /** Null as soon as one summed row has no PLN yet. */
  markup_cost_nano_pln: bigint | null
}

export interface ClientOverviewRow extends MeasureSums {
  client_org_id: string
  days_with_usage: number
}

export interface ModelSumsRow extends MeasureSums {
  model: string
}

export interface UserSumsRow extends MeasureSums {
  external_user: string
  /** The user's per-model breakdown; the user's sums are the sums of these. */
  models: ModelSumsRow[]
}

/** Days in a range that have summary rows, and how many of them lack PLN on some row. */
export interface DayCounts {
  days_with_usage: number
  days_missing_pln: number
}

const SUM_COLUMNS = `
  SUM(total_tokens) AS total_tokens,
  SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens,
  SUM(total_requests) AS total_requests,
  SUM(raw_cost_nano_usd) AS raw_cost_nano_usd,
  SUM(markup_cost_nano_usd) AS markup_cost_nano_usd,
  SUM(markup_cost_nano_pln) AS markup_cost_nano_pln,
  SUM(markup_cost_nano_pln IS NULL) AS missing_pln`

type RawSums = Record<string, bigint | string | null>

function toSums(r: RawSums): MeasureSums {
  return {
    total_tokens: Number(r.total_tokens),
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
    total_requests: Number(r.total_requests),
    raw_cost_nano_usd: r.raw_cost_nano_usd as bigint,
    markup_cost_nano_usd: r.markup_cost_nano_usd as bigint,
    // SUM ignores NULLs: a partial PLN sum would look like a real total, so it is dropped.
    markup_cost_nano_pln: (r.missing_pln as bigint) > 0n ? null : ((r.markup_cost_nano_pln as bigint | null) ?? 0n),
  }
}

export function zeroSums(): MeasureSums {
  return {
    total_tokens: 0,
    input_tokens: 0,
    output_tokens: 0,
    total_requests: 0,
    raw_cost_nano_usd: 0n,
    markup_cost_nano_usd: 0n,
    markup_cost_nano_pln: 0n,
  }
}

/** Exact sums of sums; PLN null when any part lacks it. */
export function addSums(parts: Iterable<MeasureSums>): MeasureSums {
  const out = zeroSums()
  for (const p of parts) {
    out.total_tokens += p.total_tokens
    out.input_tokens += p.input_tokens
    out.output_tokens += p.output_tokens
    out.total_requests += p.total_requests
    out.raw_cost_nano_usd += p.raw_cost_nano_usd
    out.markup_cost_nano_usd += p.markup_cost_nano_usd
    out.markup_cost_nano_pln =
      out.markup_cost_nano_pln === null || p.markup_cost_nano_pln === null ? null : out.markup_cost_nano_pln + p.markup_cost_nano_pln
  }
  return out
}

const statements = new WeakMap<object, Map<string, Statement>>()

/** Prepared once per connection; every integer read back as bigint. */
function stmt(db: Db, sql: string): Statement {
  let byText = statements.get(db.$client)
  if (!byText) {
    byText = new Map()
    statements.set(db.$client, byText)
  }
  let s = byText.get(sql)
  if (!s) {
    s = db.$client.prepare(sql).safeIntegers(true)
    byText.set(sql, s)
  }
  return s
}

/** Every client with usage in [from, to], with its sums and days with usage, by client id. */
export function clientsOverview(db: Db, from: string, to: string): ClientOverviewRow[] {
  const rows = stmt(
    db,
    `SELECT client_org_id, COUNT(*) AS days_with_usage, ${SUM_COLUMNS}
       FROM client_daily_usage WHERE usage_date >= ? AND usage_date <= ?
      GROUP BY client_org_id ORDER BY client_org_id`,
  ).all(from, to) as RawSums[]
  return rows.map((r) => ({ client_org_id: r.client_org_id as string, ...toSums(r), days_with_usage: Number(r.days_with_usage) }))
}

/** A client's per-model sums over [from, to] (client_model_daily_usage), most tokens first, then by name. */
export function clientModelSums(db: Db, clientOrgId: string, from: string, to: string): ModelSumsRow[] {
  const rows = stmt(
    db,
    `SELECT model, ${SUM_COLUMNS}
       FROM client_model_daily_usage WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ?
      GROUP BY model ORDER BY SUM(total_tokens) DESC, model`,
  ).all(clientOrgId, from, to) as RawSums[]
  return rows.map((r) => ({ model: r.model as string, ...toSums(r) }))
}

/** A client's per-user sums over [from, to] with each user's per-model breakdown (client_user_daily_usage). */
export function clientUserSums(db: Db, clientOrgId: string, from: string, to: string): UserSumsRow[] {
  const rows = stmt(
    db,
    `SELECT external_user, model, ${SUM_COLUMNS}
       FROM client_user_daily_usage WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ?
      GROUP BY external_user, model ORDER BY external_user, SUM(total_tokens) DESC, model`,
  ).all(clientOrgId, from, to) as RawSums[]
  const byUser = new Map<string, ModelSumsRow[]>()
  for (const r of rows) {
    const user = r.external_user as string
    let models = byUser.get(user)
    if (!models) {
      models = []
      byUser.set(user, models)
    }
    models.push({ model: r.model as string, ...toSums(r) })
  }
  return [...byUser].map(([external_user, models]) => ({ external_user, ...addSums(models), models }))
}

/** Distinct users of a client over [from, to]: distinct external_user values, not a sum of daily counts. */
export function distinctUsers(db: Db, clientOrgId: string, from: string, to: string): number {
  const row = stmt(
    db,
    `SELECT COUNT(DISTINCT external_user) AS n FROM client_user_daily_usage
      WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ?`,
  ).get(clientOrgId, from, to) as { n: bigint }
  return Number(row.n)
}

/** Days with rows in a summary table over [from, to] (for one client, or all), and how many lack PLN on some row. */
export function dayCounts(
  db: Db,
  table: 'client_daily_usage' | 'client_user_daily_usage' | 'client_model_daily_usage',
  clientOrgId: string | null,
  from: string,
  to: string,
): DayCounts {
  const row = stmt(
    db,
    `SELECT COUNT(DISTINCT usage_date) AS days,
            COUNT(DISTINCT CASE WHEN markup_cost_nano_pln IS NULL THEN usage_date END) AS missing
       FROM ${table} WHERE (@client IS NULL OR client_org_id = @client) AND usage_date >= @from AND usage_date <= @to`,
  ).get({ client: clientOrgId, from, to }) as { days: bigint; missing: bigint }
  return { days_with_usage: Number(row.days), days_missing_pln: Number(row.missing) }
}

/** The stored USD/PLN rate of a usage date, if any (for pricing today's live figures). */
export function storedUsdPlnRate(db: Db, usageDate: string): { rate: string; effective_date: string } | undefined {
  return stmt(
    db,
    `SELECT rate, effective_date FROM daily_exchange_rates
      WHERE usage_date = ? AND currency_from = 'USD' AND currency_to = 'PLN'`,
  ).get(usageDate) as { rate: string; effective_date: string } | undefined
}
