// Alerts: which conditions hold, and sending each once. The sent keys live in `alerts_sent`, so a
// restart does not resend; a key is recorded only after the webhook accepted it, so an alert whose
// delivery failed is tried again at the next evaluation.
import type { Logger } from 'pino'
import { addDays, today, yesterday, type Clock } from '../clock.js'
import type { BatchRunRow, Store } from '../db/store.js'
import { alertKey, deliverAlert, type Alert, type DeliveryOptions } from './delivery.js'
import { costSpikes, daysWithoutSuccess, plnMissing, runFailedAlert, unresolvedFailures } from './rules.js'

export interface AlertingDeps {
  store: Store
  clock: Clock
  log: Logger
  timeZone: string
  /** ALERT_WEBHOOK_URL; unset: conditions are still evaluated and logged, nothing is sent. */
  webhookUrl?: string
  /** ALERT_SPIKE_FACTOR. */
  spikeFactor: number
  /** BATCH_CATCHUP_DAYS: a date older than this many days before yesterday is past catch-up. */
  catchupDays: number
  /** BATCH_LOOKBACK_DAYS: recent dates whose summaries may still change are checked for spikes. */
  lookbackDays: number
  /** Retry policy, injectable sleep and fetch (tests). */
  delivery?: Omit<DeliveryOptions, 'url' | 'log'>
}

export type SendOutcome = 'sent' | 'duplicate' | 'failed' | 'disabled'

export interface EvaluationReport {
  alerts: Array<{ key: string; kind: Alert['kind']; date: string; client_org_id?: string; outcome: SendOutcome }>
}

/** How far back failures and PLN gaps are looked for; older ones have been reported already. */
const SCAN_DAYS = 60
/** PLN may be missing this many days before it is worth a person's attention (NBP outages are short). */
const PLN_GRACE_DAYS = 2

export type Alerting = ReturnType<typeof createAlerting>

export function createAlerting(deps: AlertingDeps) {
  const { store } = deps
  const log = deps.log.child({ component: 'alerts' })
  /** Keys being delivered by this process right now, so two callers do not post the same alert. */
  const inProgress = new Set<string>()
  const logged = new Set<string>()

  async function send(alert: Alert): Promise<SendOutcome> {
    const key = alertKey(alert)
    if (!deps.webhookUrl) {
      // Said once per process, not at every tick: without a webhook the log is the only channel.
      if (!logged.has(key)) log.warn({ key, text: alert.text }, 'alert condition (no ALERT_WEBHOOK_URL configured)')
      logged.add(key)
      return 'disabled'
    }
    if (inProgress.has(key)) return 'duplicate'
    inProgress.add(key)
    try {
      if (await store.alerts.wasSent(key)) return 'duplicate'
      const result = await deliverAlert({ ...deps.delivery, url: deps.webhookUrl, log }, alert)
      if (result.ok) {
        await store.alerts.recordSent({
          alert_key: key,
          kind: alert.kind,
          usage_date: alert.date,
          client_org_id: alert.client_org_id ?? null,
          sent_at: new Date(deps.clock.now()).toISOString(),
          attempts: result.attempts,
        })
        log.info({ key, attempts: result.attempts }, 'alert sent')
        return 'sent'
      }
      log.error({ key, attempts: result.attempts, error: result.error }, 'alert not delivered; will retry at the next evaluation')
      return 'failed'
    } finally {
      inProgress.delete(key)
    }
  }

  /** Every condition that holds now. */
  async function conditions(): Promise<Alert[]> {
    const todayDate = today(deps.clock, deps.timeZone)
    const last = yesterday(deps.clock, deps.timeZone)
    const pastCatchup = addDays(last, -deps.catchupDays)
    const scanFrom = addDays(todayDate, -SCAN_DAYS)
    return [
      ...(await unresolvedFailures(store, scanFrom, last)),
      ...(await daysWithoutSuccess(store, pastCatchup, SCAN_DAYS - deps.catchupDays)),
      ...(await plnMissing(store, scanFrom, addDays(todayDate, -(PLN_GRACE_DAYS + 1)))),
      ...(await costSpikes(store, datesBack(last, deps.lookbackDays), { factor: deps.spikeFactor })),
    ]
  }

  return {
    /**
     * For the batch service's `onRunFinished` hook: a failed run is reported at once. Never rejects;
     * wire as `onRunFinished: (run) => void alerting.alertOnRun(run)`.
     */
    async alertOnRun(run: BatchRunRow): Promise<SendOutcome | 'not_failed'> {
      if (run.status !== 'failed') return 'not_failed'
      try {
        return await send(runFailedAlert(run))
      } catch (e) {
        log.error({ err: e, runId: run.id }, 'alert on run failed')
        return 'failed'
      }
    },

    /**
     * Checks every condition and sends what has not been sent. Call after each scheduled tick (after
     * the day's runs and the retention pass). Never rejects.
     */
    async evaluateAlerts(): Promise<EvaluationReport> {
      const report: EvaluationReport = { alerts: [] }
      let found: Alert[]
      try {
        found = await conditions()
      } catch (e) {
        log.error({ err: e }, 'alert evaluation failed')
        return report
      }
      for (const alert of found) {
        let outcome: SendOutcome
        try {
          outcome = await send(alert)
        } catch (e) {
          log.error({ err: e, key: alertKey(alert) }, 'alert delivery crashed')
          outcome = 'failed'
        }
        report.alerts.push({
          key: alertKey(alert),
          kind: alert.kind,
          date: alert.date,
          ...(alert.client_org_id !== undefined ? { client_org_id: alert.client_org_id } : {}),
          outcome,
        })
      }
      return report
    },
  }
}

/** `last` and the `n` dates before it, oldest first. */
function datesBack(last: string, n: number): string[] {
  const out: string[] = []
  for (let i = n; i >= 0; i--) out.push(addDays(last, -i))
  return out
}
