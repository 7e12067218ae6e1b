// Stored USD/PLN rates per usage date (docs/data-model.md#exchange-rates). A manual rate always wins:
// NBP writes are conditional on the stored row not being manual, enforced in the same statement.
import { and, asc, eq, gte, lte, sql, type SQL } from '../drizzle.js'
import { positiveRateText, requireDate, toUsdPlnRate } from '../rate-values.js'
import type { ManualRateInput, NbpRateInput, UsdPlnRate } from '../store.js'
import type { Db } from './open.js'
import { dailyExchangeRates } from '../schema.js'

const USD = 'USD'
const PLN = 'PLN'

const usdPln = and(eq(dailyExchangeRates.currency_from, USD), eq(dailyExchangeRates.currency_to, PLN))

/** The stored USD/PLN rate for a usage date, NBP or manual; undefined when none. */
export function getStoredUsdPlnRate(db: Db, usageDate: string): UsdPlnRate | undefined {
  const row = db
    .select()
    .from(dailyExchangeRates)
    .where(and(usdPln, eq(dailyExchangeRates.usage_date, usageDate)))
    .get()
  return row ? toUsdPlnRate(row) : undefined
}

/** Stored rates with from ≤ usage_date ≤ to, oldest first. */
export function listRates(db: Db, from: string, to: string): UsdPlnRate[] {
  return db
    .select()
    .from(dailyExchangeRates)
    .where(and(usdPln, gte(dailyExchangeRates.usage_date, from), lte(dailyExchangeRates.usage_date, to)))
    .orderBy(asc(dailyExchangeRates.usage_date))
    .all()
    .map(toUsdPlnRate)
}

type RateTx = Parameters<Parameters<Db['transaction']>[0]>[0]

/**
 * Inserts the USD/PLN rate of `row.usage_date`, or replaces the stored one, only where `replaceWhere`
 * holds when it is given. The one upsert of both writers: their key and replaced columns cannot drift.
 */
function upsertUsdPlnRate(db: Db | RateTx, row: Omit<typeof dailyExchangeRates.$inferInsert, 'currency_from' | 'currency_to'>, replaceWhere?: SQL) {
  const { usage_date: _key, ...changes } = row
  db.insert(dailyExchangeRates)
    .values({ ...row, currency_from: USD, currency_to: PLN })
    .onConflictDoUpdate({
      target: [dailyExchangeRates.usage_date, dailyExchangeRates.currency_from, dailyExchangeRates.currency_to],
      set: changes,
      ...(replaceWhere ? { setWhere: replaceWhere } : {}),
    })
    .run()
}

/**
 * Stores a rate fetched from NBP unless a manual rate is already stored for the date, and answers
 * the rate stored afterwards: the NBP one, or the manual one that was kept.
 */
export function saveNbpRate(db: Db, rate: NbpRateInput): UsdPlnRate {
  requireDate('usage_date', rate.usage_date)
  requireDate('effective_date', rate.effective_date)
  const row = {
    usage_date: rate.usage_date,
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
    upsertUsdPlnRate(tx, row, sql`${dailyExchangeRates.source} <> 'manual'`)
    const stored = tx
      .select()
      .from(dailyExchangeRates)
      .where(and(usdPln, eq(dailyExchangeRates.usage_date, rate.usage_date)))
      .get()
    if (!stored) throw new Error(`daily_exchange_rates ${rate.usage_date}: row missing right after upsert`)
    return toUsdPlnRate(stored)
  })
}

/** Sets (or replaces) the manual rate of a date; it replaces an NBP rate too, and NBP never replaces it. */
export function setManualRate(db: Db, input: ManualRateInput): UsdPlnRate {
  requireDate('usage_date', input.usage_date)
  const row = {
    usage_date: input.usage_date,
    rate: positiveRateText(input.rate),
    // A manual rate is not a published table: it is effective for the date it is set for.
    effective_date: input.usage_date,
    table_no: null,
    source: 'manual' as const,
    policy: input.policy ?? 'previous-business-day',
    fetched_at: input.fetched_at,
    note: input.note ?? null,
  }
  upsertUsdPlnRate(db, row)
  const { note: _note, ...rate } = row
  return rate
}
