// What a stored USD/PLN rate must be, whichever store keeps it (docs/data-model.md#exchange-rates):
// one rule for SQLite and PostgreSQL.
import { DATE_RULE, isValidDate } from '../clock.js'
import { formatDecimal, parseDecimal } from '../money.js'
import { isOneOf, RATE_POLICIES, type RateSource } from './enums.js'
import type { UsdPlnRate } from './store.js'

/** A positive exact decimal as canonical text; throws a RangeError on anything else. */
export function positiveRateText(rate: string | number): string {
  const d = parseDecimal(rate)
  if (d.units <= 0n) throw new RangeError(`a USD/PLN rate must be positive (got ${JSON.stringify(rate)})`)
  return formatDecimal(d)
}

export function requireDate(name: string, value: string): void {
  if (!isValidDate(value)) throw new RangeError(`${name} must be ${DATE_RULE} (got ${JSON.stringify(value)})`)
}

/** The columns of a stored rate row that a UsdPlnRate is made of, as either store reads them. */
export interface StoredRate {
  usage_date: string
  rate: string
  effective_date: string
  table_no: string | null
  source: RateSource
  policy: string
  fetched_at: string
}

/** A stored rate row as the store answers it; a policy the service does not know is refused. */
export function toUsdPlnRate(row: StoredRate): UsdPlnRate {
  const policy = row.policy
  if (!isOneOf(RATE_POLICIES, policy)) throw new Error(`daily_exchange_rates ${row.usage_date}: unknown policy ${JSON.stringify(policy)}`)
  return {
    usage_date: row.usage_date,
    rate: row.rate,
    effective_date: row.effective_date,
    table_no: row.table_no,
    source: row.source,
    policy,
    fetched_at: row.fetched_at,
  }
}
