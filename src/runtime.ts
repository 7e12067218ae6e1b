// Wiring of the long-lived parts shared by the server and the CLI: the database, the raw store,
// the rate provider, the batch service and (for the server) the scheduler. Opens things only when called.
import type { Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { systemClock, type Clock } from './clock.js'
import { openDb, type Db } from './db/open.js'
import { configForLog } from './logger.js'
import { createMetrics, databaseLedger, type Metrics } from './metrics.js'
import { influxdbCheck, type StoreStatus } from './sources/check.js'
import { createBatchService, type BatchService } from './batch/service.js'
import type { RateProvider } from './rates/types.js'
import { createNbpClient, type NbpClient } from './rates/nbp.js'
import { createRateProvider } from './rates/resolve.js'
import { createSqliteSource } from './sources/sqlite.js'
import { createInfluxSource } from './sources/influx.js'
import type { UsageSource } from './sources/types.js'
import { createScheduler, type Scheduler, type Timers } from './scheduler/scheduler.js'
import { abandonStaleRuns } from './scheduler/recovery.js'
import type { BatchRunRow } from './db/schema.js'
import { createLifecycle, type Lifecycle } from './lifecycle/lifecycle.js'

export interface Runtime {
  deps: {
    db: Db
    source: UsageSource
    rates: RateProvider
    clock: Clock
    batch: BatchService
    metrics: Metrics
    influxCheck: () => Promise<StoreStatus>
  }
  /**
   * Starts background work once the server listens: stale-run recovery always; catch-up and the
   * cron timer when BATCH_SCHEDULER_ENABLED. Returns at once; catch-up runs in the background.
   */
  startBackground(app: FastifyInstance): Promise<void>
  /** Stops the scheduler first, then lets a running day finish within graceMs or interrupts it. */
  stopBackground(graceMs: number): Promise<void>
  /** Marks runs of dead processes `abandoned` (the CLI does this before it runs dates). */
  recoverStaleRuns(): BatchRunRow[]
  /** The scheduler once startBackground made one. */
  scheduler(): Scheduler | undefined
  /** Retention, archives and alerts (SPEC lifecycle). */
  lifecycle: Lifecycle
  close(): Promise<void>
}

export interface RuntimeOptions {
  clock?: Clock
  timers?: Timers
  rates?: RateProvider
  /** InfluxDB dialect detection retries (INFLUXDB_QUERY_LANGUAGE=auto); tests shorten them. */
  influxRetry?: { initialMs: number; maxMs: number }
}

export async function createRuntime(config: Config, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? systemClock
  log.info({ config: configForLog(config) }, 'configuration')
  // Migrations run here, before the server listens (SPEC §6).
  const db = openDb({ path: config.SQLITE_PATH, clock })
  log.info({ sqlite: config.SQLITE_PATH }, 'database open, migrations applied')
  let source: UsageSource
  try {
    // With INFLUXDB_QUERY_LANGUAGE=auto this returns at once, InfluxDB up or not (detection runs in the background).
    source = config.influxdbFirst
      ? await createInfluxSource(config, { log, clock, retry: options.influxRetry })
      : createSqliteSource({ db, clock, path: config.SQLITE_PATH })
  } catch (e) {
    db.$client.close()
    throw e
  }
  // One cached InfluxDB check for /health and /metrics.
  const influxCheck = influxdbCheck(source, clock, config.influxdbFirst)
  // Batch figures come from the run ledger at scrape time; NBP and InfluxDB modules report through it.
  const metrics = createMetrics({
    ledger: databaseLedger(db, config, clock),
    ...(config.influxdbFirst ? { influxdbUp: async () => (await influxCheck()).status === 'up' } : {}),
  })
  if (config.influxdbFirst) source = withQueryMetrics(source, metrics)
  const rates: RateProvider =
    options.rates ??
    createRateProvider({
      db,
      nbp: withFetchMetrics(
        createNbpClient({ baseUrl: config.NBP_API_URL, timeoutMs: config.NBP_TIMEOUT_MS, maxRetries: config.NBP_MAX_RETRIES }),
        metrics,
      ),
      policy: config.EXCHANGE_RATE_POLICY,
      clock,
      log,
    })
  const lifecycle = createLifecycle(config, { db, clock, log })
  const batch = createBatchService({
    db,
    source,
    rates,
    clock,
    log,
    timeZone: config.BUSINESS_TIMEZONE,
    defaultMarkupRate: config.defaultMarkupRate,
    // A failed day is reported at once (ALERT_WEBHOOK_URL); delivery never throws. /metrics reads the ledger itself.
    onRunFinished: (run) => void lifecycle.alertOnRun(run),
    perClientConcurrency:
      config.influxdbFirst && config.INFLUXDB_AGGREGATION_MODE === 'per-client' ? config.INFLUXDB_AGGREGATION_BATCH_SIZE : undefined,
  })
  log.info({ dataSource: source.dataSource, dialect: source.dialect }, 'raw usage store selected')

  let scheduler: Scheduler | undefined
  let stopping = false
  const recoverStaleRuns = () => abandonStaleRuns({ db, clock, log, batch })

  return {
    deps: { db, source, rates, clock, batch, metrics, influxCheck },
    lifecycle,
    recoverStaleRuns,
    scheduler: () => scheduler,
    async startBackground(app) {
      // A signal may have arrived while the server was still starting.
      if (stopping) return
      if (!config.BATCH_SCHEDULER_ENABLED) {
        // A replica without a scheduler still reclaims dead runs, so their dates can be run again.
        recoverStaleRuns()
        log.info('scheduler disabled (BATCH_SCHEDULER_ENABLED=false): no ticks, no catch-up')
        return
      }
      scheduler = createScheduler({
        batch,
        db,
        clock,
        log,
        cron: config.BATCH_SCHEDULE_CRON,
        timeZone: config.BUSINESS_TIMEZONE,
        lookbackDays: config.BATCH_LOOKBACK_DAYS,
        catchupDays: config.BATCH_CATCHUP_DAYS,
        timers: options.timers,
        // Retention only removes days a success already covers; alerts look at the tick's outcome.
        afterTick: () => lifecycle.afterTick(),
      })
      app.services.scheduler = scheduler
      scheduler.start()
    },
    async stopBackground(graceMs) {
      stopping = true
      // The scheduler first, so no tick starts new days while the batch drains.
      scheduler?.stop()
      await batch.stop(graceMs)
    },
    async close() {
      await source.close()
      db.$client.close()
    },
  }
}

/** Counts NBP requests that failed after their retries (`usage_batch_nbp_fetch_failures_total`). */
export function withFetchMetrics(nbp: NbpClient, metrics: Metrics): NbpClient {
  return {
    async fetchUsdRates(start, end) {
      try {
        return await nbp.fetchUsdRates(start, end)
      } catch (e) {
        metrics.nbpFetchFailed()
        throw e
      }
    },
  }
}

/**
 * Times each InfluxDB query (aggregation, client listing), start to last row; counts failures.
 * Reads the wrapped source's properties when asked, not once: a source whose dialect is detected in
 * the background gains its client listing and dialect later.
 */
export function withQueryMetrics(source: UsageSource, metrics: Metrics): UsageSource {
  async function timed<T>(query: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const result = await query()
      metrics.influxQuery(performance.now() - started, true)
      return result
    } catch (e) {
      metrics.influxQuery(performance.now() - started, false)
      throw e
    }
  }
  return {
    get dataSource() {
      return source.dataSource
    },
    get dialect() {
      return source.dialect
    },
    get listClients(): UsageSource['listClients'] {
      const listClients = source.listClients?.bind(source)
      return listClients && ((window, signal) => timed(() => listClients(window, signal)))
    },
    get aggregateClients() {
      return source.aggregateClients?.bind(source)
    },
    ...(source.ready ? { ready: () => source.ready!() } : {}),
    ingest: (events) => source.ingest(events),
    check: () => source.check(),
    close: () => source.close(),
    async *aggregate(window, options) {
      // The rows stream through (not timed()): the query counts as done when the last one arrived.
      const started = performance.now()
      try {
        for await (const row of source.aggregate(window, options)) yield row
        metrics.influxQuery(performance.now() - started, true)
      } catch (e) {
        metrics.influxQuery(performance.now() - started, false)
        throw e
      }
    },
  }
}
