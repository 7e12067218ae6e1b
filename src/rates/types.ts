// USD→PLN rates as the batch sees them: resolved per usage date, exact decimal text.

export type RateSource = 'nbp' | 'manual'
export type RatePolicy = 'previous-business-day' | 'same-day'

/** The rate that prices a usage date, with its evidence (SPEC §4). */
export interface UsdPlnRate {
  usage_date: string
  /** Exact decimal text, e.g. "4.0341". */
  rate: string
  /** The NBP table's effectiveDate (or the date a manual rate is for). */
  effective_date: string
  /** NBP table number such as "237/A/NBP/2024"; null for a manual rate. */
  table_no: string | null
  source: RateSource
  policy: RatePolicy
  /** ISO instant when it was fetched or set. */
  fetched_at: string
}

export type RateResolution = { ok: true; rate: UsdPlnRate } | { ok: false; reason: string }

/** Resolves the rate for a usage date. Never invents one: no rate is `{ ok: false, reason }`. */
export interface RateProvider {
  resolveUsdPlnRate(usageDate: string): Promise<RateResolution>
  /** What /health shows of the rate source (NBP): last success, last rate, last error. */
  health?(): RateHealth
}

export interface RateHealth {
  last_success_at: string | null
  last_rate: string | null
  last_rate_date: string | null
  last_error: string | null
  last_error_at: string | null
}

/** Until a rate source is configured: every day's PLN stays null, with the reason said. */
export const noRateProvider: RateProvider = {
  resolveUsdPlnRate: async () => ({ ok: false, reason: 'no USD/PLN rate provider is configured' }),
}
