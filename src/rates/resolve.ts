// Which NBP table prices a usage date (docs/data-model.md#exchange-rates), with stored rates reused
// and nothing invented.
import type { Logger } from 'pino'
import { DATE_RULE, addDays, isValidDate, localDateOf, type Clock } from '../clock.js'
import type { RatePolicy } from '../db/enums.js'
import type { Store } from '../db/store.js'
import { redactText } from '../redact.js'
import { NbpError, type NbpClient, type NbpRate } from './nbp.js'
import type { RateHealth, RateProvider, RateResolution } from './types.js'

/**
 * How far back to look for the last table: 10 days spans any run of Polish holidays plus weekends
 * in one request; 31 days is the single wider retry for a gap no calendar should produce.
 */
const LOOKBACK_DAYS = [10, 31] as const
/** NBP publishes in Warsaw time whatever BUSINESS_TIMEZONE says, so "is it out yet" is asked there. */
const NBP_TIME_ZONE = 'Europe/Warsaw'

export interface RateProviderDeps {
  store: Store
  nbp: NbpClient
  policy: RatePolicy
  clock: Clock
  log?: Pick<Logger, 'info' | 'warn' | 'debug'>
}

export interface UsdPlnRateProvider extends RateProvider {
  /** For the /health `nbp` component; an error newer than the last success means NBP is failing now. */
  health(): RateHealth
}

export function createRateProvider(deps: RateProviderDeps): UsdPlnRateProvider {
  const { store, nbp, policy, clock, log } = deps
  const state: RateHealth = { last_success_at: null, last_rate: null, last_rate_date: null, last_error: null, last_error_at: null }
  // Two batch paths asking for the same date at once share one NBP round trip.
  const inFlight = new Map<string, Promise<RateResolution>>()

  /**
   * Records and reports a day without a rate. The warning is one line that says why (NBP's status,
   * the URL asked, the attempts made); the stack is only for debug: an NBP outage is expected
   * trouble, and the same cause repeats for every day of a backfill.
   */
  function fail(usageDate: string, why: string, err?: unknown): RateResolution {
    // The health detail, the run's warnings and the log all come from here: redacted once.
    const reason = redactText(why)
    state.last_error = reason
    state.last_error_at = new Date(clock.now()).toISOString()
    const nbp = err instanceof NbpError ? { code: err.code, status: err.status ?? null, url: err.url ?? null, attempts: err.attempts } : undefined
    log?.warn({ usageDate, policy, ...(nbp ? { nbp } : {}) }, `USD/PLN rate unavailable: ${reason}`)
    if (err !== undefined) log?.debug({ usageDate, err }, 'USD/PLN rate failure detail')
    return { ok: false, reason }
  }

  async function fetchAndStore(usageDate: string): Promise<RateResolution> {
    // previous-business-day needs the tables up to D-1, same-day up to D itself.
    const lastDay = policy === 'same-day' ? usageDate : addDays(usageDate, -1)
    const todayInWarsaw = localDateOf(clock.now(), NBP_TIME_ZONE)
    if (lastDay > todayInWarsaw) {
      return fail(usageDate, `the NBP table for ${usageDate} (${policy}) cannot be known before ${lastDay}`)
    }

    let found: NbpRate | undefined
    let searched = ''
    try {
      for (const days of LOOKBACK_DAYS) {
        const start = addDays(usageDate, -days)
        searched = `${start}..${lastDay}`
        const rates = await nbp.fetchUsdRates(start, lastDay)
        found = rates.at(-1)
        if (found) break
      }
    } catch (e) {
      const detail = e instanceof NbpError ? e.message : `unexpected error: ${(e as Error)?.message ?? String(e)}`
      return fail(usageDate, `NBP rate for ${usageDate} unavailable: ${detail}`, e)
    }
    if (!found) return fail(usageDate, `NBP published no table A in ${searched}`)

    // Today's table appears around noon: before that, the last table is yesterday's, which is the
    // wrong answer for a rule that wants today's. Storing it would freeze the wrong rate for reruns.
    if (lastDay === todayInWarsaw && found.effectiveDate !== lastDay) {
      return fail(usageDate, `no NBP table of ${lastDay} yet (published on business days around noon Warsaw time)`)
    }

    const fetchedAt = new Date(clock.now()).toISOString()
    const stored = await store.rates.saveNbp({
      usage_date: usageDate,
      rate: found.mid,
      effective_date: found.effectiveDate,
      table_no: found.no,
      policy,
      fetched_at: fetchedAt,
    })
    state.last_success_at = fetchedAt
    state.last_rate = found.mid
    state.last_rate_date = found.effectiveDate
    log?.info(
      { usageDate, rate: stored.rate, effectiveDate: stored.effective_date, tableNo: stored.table_no, source: stored.source },
      'USD/PLN rate stored',
    )
    // A manual rate set while NBP was being asked wins: the answer is what is stored now.
    return { ok: true, rate: stored }
  }

  return {
    async resolveUsdPlnRate(usageDate) {
      if (!isValidDate(usageDate)) return { ok: false, reason: `not a usage date (${DATE_RULE}): ${JSON.stringify(usageDate)}` }
      const stored = await store.rates.get(usageDate)
      if (stored) return { ok: true, rate: stored }
      let pending = inFlight.get(usageDate)
      if (!pending) {
        pending = fetchAndStore(usageDate).finally(() => inFlight.delete(usageDate))
        inFlight.set(usageDate, pending)
      }
      return pending
    },
    health: () => ({ ...state }),
  }
}
