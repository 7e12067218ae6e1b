// Stored USD/PLN rates per usage date (docs/data-model.md#exchange-rates). A manual rate always wins:
// NBP writes are conditional on the stored row not being manual, enforced in the same statement.
import { and, asc, eq, gte, lte, sql } from 'drizzle-orm'
import { DATE_RULE, isValidDate } from '../../clock.js'
import { formatDecimal, parseDecimal } from '../../money.js'
import { isOneOf, RATE_POLICIES } from '../enums.js'
import type { ManualRateInput, NbpRateInput, UsdPlnRate } from '../store.js'
import type { Db } from './open.js'
import { dailyExchangeRates, type ExchangeRateRow } from '../schema.js'

const USD = 'USD'
const PLN = 'PLN'

const usdPln = and(eq(dailyExchangeRates.currency_from, USD), eq(dailyExchangeRates.currency_to, PLN))

export function rowToUsdPlnRate(row: ExchangeRateRow): UsdPlnRate {
  const policy = row.policy
  if (!isOneOf(RATE_POLICIES, policy)) {
    throw new Error(`daily_exchange_rates ${row.usage_date}: unknown policy ${JSON.stringify(policy)}`)
  }
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

/** The stored USD/PLN rate for a usage date, NBP or manual; undefined when none. */
export function getStoredUsdPlnRate(db: Db, usageDate: string): UsdPlnRate | undefined {
  const row = db
    .select()
    .from(dailyExchangeRates)
    .where(and(usdPln, eq(dailyExchangeRates.usage_date, usageDate)))
    .get()
  return row ? rowToUsdPlnRate(row) : undefined
}

/** Stored rates with from ≤ usage_date ≤ to, oldest first. */
export function listRates(db: Db, from: string, to: string): UsdPlnRate[] {
  return db
    .select()
    .from(dailyExchangeRates)
    .where(and(usdPln, gte(dailyExchangeRates.usage_date, from), lte(dailyExchangeRates.usage_date, to)))
    .orderBy(asc(dailyExchangeRates.usage_date))
    .all()
    .map(rowToUsdPlnRate)
}

/** A positive exact decimal as canonical text; throws on anything else. */
function positiveRateText(rate: string | number): string {
  const d = parseDecimal(rate)
  if (d.units <= 0n) throw new RangeError(`a USD/PLN rate must be positive (got ${JSON.stringify(rate)})`)
  return formatDecimal(d)
}

function requireDate(name: string, value: string): void {
  if (!isValidDate(value)) throw new RangeError(`${name} must be ${DATE_RULE} (got ${JSON.stringify(value)})`)
}

/**
 * Stores a rate fetched from NBP unless a manual rate is already stored for the date, and answers
 * the rate stored afterwards: the NBP one, or the manual one that was kept.
 */
export function saveNbpRate(db: Db, rate: NbpRateInput): UsdPlnRate {
  requireDate('usage_date', rate.usage_date)
  requireDate('effective_date', rate.effective_date)
  const values = {
    usage_date: rate.usage_date,
    currency_from: USD,
    currency_to: PLN,
    rate: positiveRateText(rate.rate),
    effective_date: rate.effective_date,
    table_no: rate.table_no,
    source: 'nbp' as const,
    policy: rate.policy,
    fetched_at: rate.fetched_at,
    note: null,
  }
  // Insert and read back in one transaction so the answer is the row this write left behind.
  return db.transaction((tx) => {
    tx.insert(dailyExchangeRates)
      .values(values)
      .onConflictDoUpdate({
        target: [dailyExchangeRates.usage_date, dailyExchangeRates.currency_from, dailyExchangeRates.currency_to],
        set: {
          rate: values.rate,
          effective_date: values.effective_date,
          table_no: values.table_no,
          source: values.source,
          policy: values.policy,
          fetched_at: values.fetched_at,
          note: null,
        },
        setWhere: sql`${dailyExchangeRates.source} <> 'manual'`,
      })
      .run()
    const row = tx
      .select()
      .from(dailyExchangeRates)
      .where(and(usdPln, eq(dailyExchangeRates.usage_date, rate.usage_date)))
      .get()
    if (!row) throw new Error(`daily_exchange_rates ${rate.usage_date}: row missing right after upsert`)
    return rowToUsdPlnRate(row)
  })
}

/** Sets (or replaces) the manual rate of a date; it replaces an NBP rate too, and NBP never replaces it. */
export function setManualRate(db: Db, input: ManualRateInput): UsdPlnRate {
  requireDate('usage_date', input.usage_date)
  const values = {
    usage_date: input.usage_date,
    currency_from: USD,
    currency_to: PLN,
    rate: positiveRateText(input.rate),
    // A manual rate is not a published table: it is effective for the date it is set for.
    effective_date: input.usage_date,
    table_no: null,
    source: 'manual' as const,
    policy: input.policy ?? 'previous-business-day',
    fetched_at: input.fetched_at,
    note: input.note ?? null,
  }
  const { usage_date: _d, currency_from: _f, currency_to: _t, ...changes } = values
  db.insert(dailyExchangeRates)
    .values(values)
    .onConflictDoUpdate({
      target: [dailyExchangeRates.usage_date, dailyExchangeRates.currency_from, dailyExchangeRates.currency_to],
      set: changes,
    })
    .run()
  return {
    usage_date: values.usage_date,
    rate: values.rate,
    effective_date: values.effective_date,
    table_no: null,
    source: 'manual',
    policy: values.policy,
    fetched_at: values.fetched_at,
  }
}
