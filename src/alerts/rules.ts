// The alert conditions, read from the run ledger and the summaries. Pure reads: no delivery here.
import { addDays, datesInRange, daysBetween } from '../clock.js'
import type { Db } from '../db/open.js'
import type { BatchRunRow } from '../db/schema.js'
import type { Alert } from './delivery.js'

const SUCCESS = "('succeeded', 'succeeded_with_warnings')"

export function runFailedAlert(run: BatchRunRow): Alert {
  return {
    kind: 'run_failed',
    date: run.processing_date,
    text: `usage-batch: the batch run for ${run.processing_date} failed (run ${run.id}): ${run.error_message ?? 'no message'}`,
    details: { run_id: run.id, trigger: run.trigger, started_at: run.started_at, finished_at: run.finished_at, error_message: run.error_message },
  }
}

/** Dates in [from, to] whose latest closed run failed: a failure nobody has fixed by a later run. */
export function unresolvedFailures(db: Db, from: string, to: string): Alert[] {
  const rows = db.$client
    .prepare(
      `SELECT r.* FROM influxdb_batch_runs r
       WHERE r.processing_date BETWEEN ? AND ? AND r.status = 'failed'
         AND r.id = (SELECT max(id) FROM influxdb_batch_runs x WHERE x.processing_date = r.processing_date AND x.status <> 'running')
       ORDER BY r.processing_date`,
    )
    .all(from, to) as BatchRunRow[]
  return rows.map(runFailedAlert)
}

/**
 * Dates that fell out of the catch-up window without a successful run: the scheduler will not try
 * them again by itself. Only dates since the first run in the ledger count (before it the service
 * did not exist), and at most `lookbackDays` of them, so an old gap is reported once, not forever.
 */
export function daysWithoutSuccess(db: Db, lastDate: string, lookbackDays: number): Alert[] {
  const first = db.$client.prepare('SELECT min(processing_date) FROM influxdb_batch_runs').pluck().get() as string | null
  if (first === null) return []
  const from = [first, addDays(lastDate, -(lookbackDays - 1))].sort()[1]!
  if (from > lastDate) return []
  const ok = new Set(
    db.$client
      .prepare(`SELECT DISTINCT processing_date FROM influxdb_batch_runs WHERE processing_date BETWEEN ? AND ? AND status IN ${SUCCESS}`)
      .pluck()
      .all(from, lastDate) as string[],
  )
  return datesInRange(from, lastDate)
    .filter((d) => !ok.has(d))
    .map((date) => ({
      kind: 'day_without_success' as const,
      date,
      text: `usage-batch: ${date} has no successful batch run and is past automatic catch-up; run it by hand (POST /batch/run {"date":"${date}"})`,
      details: { catch_up_ended_with: lastDate },
    }))
}

/** Dates up to `lastDate` (and no older than `from`) whose client summaries still lack PLN. */
export function plnMissing(db: Db, from: string, lastDate: string): Alert[] {
  const rows = db.$client
    .prepare(
      `SELECT usage_date AS date, count(*) AS clients FROM client_daily_usage
       WHERE markup_cost_nano_pln IS NULL AND usage_date BETWEEN ? AND ? GROUP BY usage_date ORDER BY usage_date`,
    )
    .all(from, lastDate) as Array<{ date: string; clients: number }>
  return rows.map(({ date, clients }) => ({
    kind: 'pln_missing' as const,
    date,
    text: `usage-batch: ${date} still has no PLN amounts for ${clients} client(s): no USD/PLN rate for the day; check NBP or set a manual rate (PUT /usage/exchange-rates/${date})`,
    details: { clients_without_pln: clients },
  }))
}

export interface SpikeRule {
  /** ALERT_SPIKE_FACTOR. */
  factor: number
  /** Days of history before the date (default 28). */
  historyDays?: number
  /** Days with usage needed in that history before the rule speaks (default 7). */
  minHistoryDays?: number
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/**
 * A client's marked-up USD cost on `date` against its own history. The baseline is the larger of
 * the median over the previous 28 days with usage and the median of the same weekday in the
 * previous four weeks: a client that is busy every Monday, or quiet every weekend, is compared with
 * its own Mondays too, so ordinary weekly rhythm does not read as a spike. Days without usage are
 * left out of the history rather than counted as zero (a client active three days a week would
 * otherwise have a median of zero). Fewer than `minHistoryDays` days with usage is too little to
 * know what is normal; a zero baseline (free models, say) makes any paid day an infinite factor, so
 * neither raises an alert.
 */
export function costSpikes(db: Db, dates: string[], rule: SpikeRule): Alert[] {
  if (dates.length === 0) return []
  const historyDays = rule.historyDays ?? 28
  const minHistory = rule.minHistoryDays ?? 7
  const sorted = [...dates].sort()
  const rows = db.$client
    .prepare('SELECT client_org_id, usage_date, markup_cost_nano_usd AS cost FROM client_daily_usage WHERE usage_date BETWEEN ? AND ?')
    .all(addDays(sorted[0]!, -historyDays), sorted[sorted.length - 1]!) as Array<{ client_org_id: string; usage_date: string; cost: number }>
  const byClient = new Map<string, Map<string, number>>()
  for (const r of rows) {
    let m = byClient.get(r.client_org_id)
    if (!m) byClient.set(r.client_org_id, (m = new Map()))
    m.set(r.usage_date, r.cost)
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
