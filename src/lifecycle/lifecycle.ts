// The lifecycle pieces built from the configuration, for the scheduler, the CLI and the batch hook to
// call. Opens nothing and starts no timer: the caller decides when each runs.
import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Db } from '../db/open.js'
import { createAlerting, type AlertingDeps, type EvaluationReport } from '../alerts/alerting.js'
import { ArchiveError, restoreArchive, type RestoreResult } from './archive.js'
import { runRetention, type RetentionDeps, type RetentionReport } from './retention.js'

export interface LifecycleDeps {
  db: Db
  clock: Clock
  log: Logger
  /** Metrics: an alert the webhook never accepted, and one it did. */
  onDeliveryFailed?: AlertingDeps['onDeliveryFailed']
  onDelivered?: AlertingDeps['onDelivered']
  /** Tests: retry policy, sleep, fetch. */
  delivery?: AlertingDeps['delivery']
  /** Tests: chunk sizes and yields of the retention pass. */
  retention?: Pick<RetentionDeps, 'chunkRows' | 'vacuumPages' | 'yieldToEventLoop'>
}

export type Lifecycle = ReturnType<typeof createLifecycle>

export function createLifecycle(config: Config, deps: LifecycleDeps) {
  const alerting = createAlerting({
    db: deps.db,
    clock: deps.clock,
    log: deps.log,
    timeZone: config.BUSINESS_TIMEZONE,
    webhookUrl: config.ALERT_WEBHOOK_URL,
    spikeFactor: config.ALERT_SPIKE_FACTOR,
    catchupDays: config.BATCH_CATCHUP_DAYS,
    lookbackDays: config.BATCH_LOOKBACK_DAYS,
    delivery: deps.delivery,
    onDeliveryFailed: deps.onDeliveryFailed,
    onDelivered: deps.onDelivered,
  })

  function retention(): Promise<RetentionReport> {
    return runRetention({
      db: deps.db,
      dbPath: config.SQLITE_PATH,
      clock: deps.clock,
      log: deps.log,
      timeZone: config.BUSINESS_TIMEZONE,
      retentionDays: config.RAW_RETENTION_DAYS,
      archiveDir: config.RAW_ARCHIVE_DIR,
      influxdbFirst: config.influxdbFirst,
      ...deps.retention,
    })
  }

  return {
    /** For `createBatchService({ onRunFinished })`: `(run) => void lifecycle.alertOnRun(run)`. Never rejects. */
    alertOnRun: alerting.alertOnRun,

    /** One retention pass (throws only on an unexpected store error; one bad day is logged and skipped). */
    runRetention: retention,

    /** Every alert condition, each sent once. Never rejects. */
    evaluateAlerts: alerting.evaluateAlerts,

    /**
     * After each scheduled tick, once its runs have closed: retention first (it only removes days a
     * success already covers), then alerts (so a failure of retention itself does not hide them).
     * Never rejects.
     */
    async afterTick(): Promise<{ retention: RetentionReport | null; alerts: EvaluationReport }> {
      let report: RetentionReport | null = null
      try {
        report = await retention()
      } catch (e) {
        deps.log.error({ err: e }, 'retention pass failed')
      }
      return { retention: report, alerts: await alerting.evaluateAlerts() }
    },

    /** CLI `usage-batch archive restore --date D`. */
    async restoreArchive(date: string): Promise<RestoreResult> {
      if (!config.RAW_ARCHIVE_DIR) throw new ArchiveError('RAW_ARCHIVE_DIR is not set: there are no archives to restore')
      return restoreArchive({ db: deps.db, archiveDir: config.RAW_ARCHIVE_DIR, clock: deps.clock, log: deps.log }, date)
    },
  }
}
