// USD→PLN rates as the batch sees them: resolved per usage date, exact decimal text. The rate
// itself, with its evidence, is the stored row (db/store.ts UsdPlnRate).
import type { UsdPlnRate } from '../db/store.js'

export type RateResolution = { ok: true; rate: UsdPlnRate } | { ok: false; reason: string }

/** Resolves the rate for a usage date. Never invents one: no rate is `{ ok: false, reason }`. */
export interface RateProvider {
  resolveUsdPlnRate(usageDate: string): Promise<RateResolution>
  /** What /health shows of the rate source (NBP): last success, last rate, last error. */
  health?(): RateHealth
}

/** What the rate source (NBP) last did, for /health. */
export interface RateHealth {
  /** ISO instant of the last successful NBP answer that gave a rate. */
  last_success_at: string | null
  last_rate: string | null
  /** effectiveDate of the table behind last_rate. */
  last_rate_date: string | null
  last_error: string | null
  last_error_at: string | null
}

/** Until a rate source is configured: every day's PLN stays null, with the reason said. */
export const noRateProvider: RateProvider = {
  resolveUsdPlnRate: async () => ({ ok: false, reason: 'no USD/PLN rate provider is configured' }),
}
