// The lifecycle pieces built from the configuration, for the scheduler, the CLI and the batch hook to
// call. Opens nothing and starts no timer: the caller decides when each runs.
import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Store } from '../db/store.js'
import { createAlerting, type AlertingDeps, type EvaluationReport } from '../alerts/alerting.js'
import { ArchiveError, restoreArchive, type RestoreResult } from './archive.js'
import { retentionInfo, runRetention, type RetentionDeps, type RetentionReport } from './retention.js'

export interface LifecycleDeps {
  store: Store
  clock: Clock
  log: Logger
  /** Tests: retry policy, sleep, fetch. */
  delivery?: AlertingDeps['delivery']
  /** Tests: chunk sizes and yields of the retention pass. */
  retention?: Pick<RetentionDeps, 'chunkRows' | 'vacuumPages' | 'yieldToEventLoop'>
}

export type Lifecycle = ReturnType<typeof createLifecycle>

export function createLifecycle(config: Config, deps: LifecycleDeps) {
  const alerting = createAlerting({
    store: deps.store,
    clock: deps.clock,
    log: deps.log,
    timeZone: config.BUSINESS_TIMEZONE,
    webhookUrl: config.ALERT_WEBHOOK_URL,
    spikeFactor: config.ALERT_SPIKE_FACTOR,
    catchupDays: config.BATCH_CATCHUP_DAYS,
    lookbackDays: config.BATCH_LOOKBACK_DAYS,
    delivery: deps.delivery,
  })

  function retention(): Promise<RetentionReport> {
    return runRetention({
      store: deps.store,
      clock: deps.clock,
      log: deps.log,
      timeZone: config.BUSINESS_TIMEZONE,
      retentionDays: config.RAW_RETENTION_DAYS,
      archiveDir: config.RAW_ARCHIVE_DIR,
      influxdbFirst: config.influxdbFirst,
      embedded: config.DATABASE_URL === undefined ? 'sqlite' : 'postgresql',
      ...deps.retention,
    })
  }

  return {
    /** For the batch service's `onRunFinished`: a failed run is reported at once. Never rejects. */
    alertOnRun: alerting.alertOnRun,

    /** One retention pass (throws only on an unexpected store error; one bad day is logged and skipped). */
    runRetention: retention,

    /** Who removes old raw usage, for /health and /batch/storage. */
    retentionInfo: () => retentionInfo(config),

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
      return restoreArchive({ store: deps.store, archiveDir: config.RAW_ARCHIVE_DIR, clock: deps.clock, log: deps.log }, date)
    },
  }
}
