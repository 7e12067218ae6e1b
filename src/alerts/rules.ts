// The alert conditions, read from the run ledger and the summaries. Pure reads: no delivery here.
import { addDays, datesInRange, daysBetween } from '../clock.js'
import type { BatchRunRow, Store } from '../db/store.js'
import type { Alert } from './delivery.js'

export function runFailedAlert(run: BatchRunRow): Alert {
  return {
    kind: 'run_failed',
    date: run.processing_date,
    text: `usage-batch: the batch run for ${run.processing_date} failed (run ${run.id}): ${run.error_message ?? 'no message'}`,
    details: { run_id: run.id, trigger: run.trigger, started_at: run.started_at, finished_at: run.finished_at, error_message: run.error_message },
  }
}

/** Dates in [from, to] whose latest closed run failed: a failure nobody has fixed by a later run. */
export async function unresolvedFailures(store: Store, from: string, to: string): Promise<Alert[]> {
  return (await store.runs.unresolvedFailures(from, to)).map(runFailedAlert)
}

/**
 * Dates that fell out of the catch-up window without a successful run: the scheduler will not try
 * them again by itself. Only dates since the first run in the ledger count (before it the service
 * did not exist), and at most `lookbackDays` of them, so an old gap is reported once, not forever.
 */
export async function daysWithoutSuccess(store: Store, lastDate: string, lookbackDays: number): Promise<Alert[]> {
  const first = await store.runs.firstProcessingDate()
  if (first === null) return []
  const from = [first, addDays(lastDate, -(lookbackDays - 1))].sort()[1]!
  if (from > lastDate) return []
  const dates = datesInRange(from, lastDate)
  const ok = await store.runs.datesWithSuccess(dates)
  return dates
    .filter((d) => !ok.has(d))
    .map((date) => ({
      kind: 'day_without_success' as const,
      date,
      text: `usage-batch: ${date} has no successful batch run and is past automatic catch-up; run it by hand (POST /batch/run {"date":"${date}"})`,
      details: { catch_up_ended_with: lastDate },
    }))
}

/** Dates up to `lastDate` (and no older than `from`) whose client summaries still lack PLN. */
export async function plnMissing(store: Store, from: string, lastDate: string): Promise<Alert[]> {
  const rows = await store.summaries.plnMissingByDate(from, lastDate)
  return rows.map(({ date, clients }) => ({
    kind: 'pln_missing' as const,
    date,
    text: `usage-batch: ${date} still has no PLN amounts for ${clients} client(s): no USD/PLN rate for the day; check NBP or set a manual rate (PUT /usage/exchange-rates/${date})`,
    details: { clients_without_pln: clients },
  }))
}

/** Four weeks: every weekday is seen four times. */
const DEFAULT_HISTORY_DAYS = 28
/** A week of days with usage before anything counts as normal. */
const DEFAULT_MIN_HISTORY_DAYS = 7

export interface SpikeRule {
  /** ALERT_SPIKE_FACTOR. */
  factor: number
  /** Days of history before the date (default DEFAULT_HISTORY_DAYS). */
  historyDays?: number
  /** Days with usage needed in that history before the rule speaks (default DEFAULT_MIN_HISTORY_DAYS). */
  minHistoryDays?: number
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/**
 * A client's marked-up USD cost on `date` against its own history. The baseline is the larger of
 * the median over the previous DEFAULT_HISTORY_DAYS days with usage and the median of the same weekday in the
 * previous four weeks: a client that is busy every Monday, or quiet every weekend, is compared with
 * its own Mondays too, so ordinary weekly rhythm does not read as a spike. Days without usage are
 * left out of the history rather than counted as zero (a client active three days a week would
 * otherwise have a median of zero). Fewer than `minHistoryDays` days with usage is too little to
 * know what is normal; a zero baseline (free models, say) makes any paid day an infinite factor, so
 * neither raises an alert.
 */
export async function costSpikes(store: Store, dates: string[], rule: SpikeRule): Promise<Alert[]> {
  if (dates.length === 0) return []
  const historyDays = rule.historyDays ?? DEFAULT_HISTORY_DAYS
  const minHistory = rule.minHistoryDays ?? DEFAULT_MIN_HISTORY_DAYS
  const sorted = [...dates].sort()
  const rows = await store.summaries.dailyMarkupCosts(addDays(sorted[0]!, -historyDays), sorted[sorted.length - 1]!)
  const byClient = new Map<string, Map<string, number>>()
  for (const r of rows) {
    let m = byClient.get(r.client_org_id)
    if (!m) byClient.set(r.client_org_id, (m = new Map()))
    m.set(r.usage_date, r.markup_cost_nano_usd)
  }
  const alerts: Alert[] = []
  for (const date of sorted) {
    for (const [client, days] of byClient) {
      const cost = days.get(date)
      if (cost === undefined) continue
      const history: number[] = []
      const sameWeekday: number[] = []
      for (const [d, c] of days) {
        const back = daysBetween(d, date)
        if (back < 1 || back > historyDays) continue
        history.push(c)
        if (back % 7 === 0) sameWeekday.push(c)
      }
      if (history.length < minHistory) continue
      const baseline = Math.max(median(history), sameWeekday.length > 0 ? median(sameWeekday) : 0)
      if (baseline <= 0 || cost <= rule.factor * baseline) continue
      const usd = (n: number) => (n / 1e9).toFixed(2)
      alerts.push({
        kind: 'cost_spike',
        date,
        client_org_id: client,
        text: `usage-batch: ${client} spent ${usd(cost)} USD (marked up) on ${date}, ${(cost / baseline).toFixed(1)}× its usual ${usd(baseline)} USD`,
        details: {
          markup_cost_usd: cost / 1e9,
          baseline_usd: baseline / 1e9,
          factor: cost / baseline,
          threshold_factor: rule.factor,
          history_days: history.length,
        },
      })
    }
  }
  return alerts
}
