// The composition root: every long-lived part of the service, built once from the configuration.
// The server, the CLI and the test helper all build through createServices, so tests run the
// production wiring; buildApp (app.ts) only puts these services behind HTTP routes.
// Opens the store and the raw store when called; starts no timer until start().
import type { Logger } from 'pino'
import { systemClock, type Clock } from './clock.js'
import type { Config } from './config.js'
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './db/sqlite/store.js'
import type { BatchRunRow, Store } from './db/store.js'
import { createBatchService, defaultOwner, HEARTBEAT_INTERVAL_MS, type BatchService } from './batch/service.js'
import { createTodayView, type TodayView } from './batch/today.js'
import { createHealthChecks, type HealthChecks } from './health.js'
import { createLifecycle, type Lifecycle, type LifecycleDeps } from './lifecycle/lifecycle.js'
import { storageReport } from './lifecycle/storage.js'
import { configForLog } from './logger.js'
import { redactText } from './redact.js'
import { createMetrics, databaseLedger, type Metrics } from './metrics.js'
import { createNbpClient, type NbpClient, type NbpClientOptions } from './rates/nbp.js'
import { createRateProvider } from './rates/resolve.js'
import type { RateProvider } from './rates/types.js'
import type { StorageResponse } from './schemas/storage.js'
import { createLeader, createSingleProcessLeader, LEADER_CHECK_TIMEOUT_MS, LEADER_INTERVAL_MS, type Leader } from './scheduler/leader.js'
import { abandonStaleRuns, FOREIGN_HOST_STALE_AFTER_MS } from './scheduler/recovery.js'
import { createScheduler, systemTimers, type SchedulerHandle, type Timers } from './scheduler/scheduler.js'
import { cronJobTrigger } from './scheduler/triggers.js'
import { influxdbCheck, type StoreStatus } from './sources/check.js'
import { createInfluxSource } from './sources/influx.js'
import { createSqliteSource } from './sources/sqlite.js'
import type { UsageSource } from './sources/types.js'
import type { Static } from 'typebox'
import type { ToadScheduler } from 'toad-scheduler'

export type { BatchRunRow, ClientPricingRow, DailyRead, DayCounts, UsdPlnRate } from './db/store.js'

export interface ServiceDeps {
  log: Logger
  clock?: Clock
  /** The scheduler's and the leader's timers (tests drive them by hand). */
  timers?: Timers
  /** Tests: a rate provider in place of NBP's, e.g. one that holds a run in flight on purpose. */
  rates?: RateProvider
  /** Tests: NBP client options beside the configured URL (no real sleeps between retries). */
  nbp?: Pick<NbpClientOptions, 'sleep' | 'baseDelayMs' | 'maxDelayMs' | 'random'>
  /**
   * Tests, SQLite mode: the raw store to use, given the store and the configured raw store (fault
   * injection around it). Ignored with DATABASE_URL.
   */
  source?: (store: SqliteStore, configured: () => Promise<UsageSource>) => UsageSource | Promise<UsageSource>
  /** InfluxDB dialect detection retries (INFLUXDB_QUERY_LANGUAGE=auto); tests shorten them. */
  influxRetry?: { initialMs: number; maxMs: number }
  /** Tests: alert delivery and retention chunking. */
  lifecycle?: Pick<LifecycleDeps, 'delivery' | 'retention'>
  /**
   * Tests: which processes count as alive for stale-run recovery. `host` is also this process's
   * host in the owner it writes on its runs (pid@host), so processes on one machine can play
   * replicas on different hosts.
   */
  liveness?: { host?: string; pidAlive?: (pid: number) => boolean }
  /** Tests: shorter replica timings; the defaults meet docs/postgresql.md's bounds. */
  replica?: Partial<ReplicaTimings>
  /** When the store is created for the first time (database_metadata); the clock otherwise. */
  createdAtClock?: Clock
  /** Tests: a store that is not migrated, or served read-only. */
  sqlite?: Pick<SqliteStoreOptions, 'migrate' | 'readonly'>
}

/** The timings of several replicas on one store (docs/postgresql.md#the-replica-model). */
export interface ReplicaTimings {
  /** A follower tries the leader lock, and the leader checks it still holds it, this often. */
  leaderIntervalMs: number
  /** A leader's check unanswered this long counts as a lost lock. */
  leaderCheckTimeoutMs: number
  /** A running day stamps its run this often. */
  heartbeatMs: number
  /** A run of another host whose heartbeat is this old is dead. */
  staleAfterMs: number
  /** With a shared store, every replica looks for dead runs this often. */
  recoveryIntervalMs: number
}

export const DEFAULT_REPLICA_TIMINGS: ReplicaTimings = {
  leaderIntervalMs: LEADER_INTERVAL_MS,
  leaderCheckTimeoutMs: LEADER_CHECK_TIMEOUT_MS,
  heartbeatMs: HEARTBEAT_INTERVAL_MS,
  staleAfterMs: FOREIGN_HOST_STALE_AFTER_MS,
  recoveryIntervalMs: 20_000,
}

/** The scheduler as the rest of the service drives it. */
export interface SchedulerService extends SchedulerHandle {
  /**
   * With BATCH_SCHEDULER_ENABLED: leader election, recovery, catch-up (claimed before this resolves,
   * run in the background) and the daily CronJob on `jobs`, the app's scheduler (`app.scheduler`,
   * @fastify/schedule), which stops it when the app closes. Without: recovery only, so the dates of
   * dead runs can be run again. Services built with injected timers (tests) tick from those instead.
   */
  start(jobs?: ToadScheduler): Promise<void>
  /** No tick starts after this; the leadership is given up. */
  stop(): Promise<void>
  /** Resolves when neither catch-up nor a tick is running. */
  idle(): Promise<void>
  /** The catch-up's closed runs once it is done ([] before start, or when there was none). */
  catchUpDone(): Promise<BatchRunRow[]>
}

export interface Services {
  config: Config
  clock: Clock
  log: Logger
  store: Store
  source: UsageSource
  rates: RateProvider
  /** Prometheus metrics of this instance; NBP and InfluxDB modules report through it. */
  metrics: Metrics
  /** InfluxDB's state, cached for a few seconds (`disabled` in the embedded mode). */
  influxCheck: () => Promise<StoreStatus>
  batch: BatchService
  /** Today's live figures (short cache); a void clears it, so no live read counts a voided record. */
  today: TodayView
  health: HealthChecks
  storage: { report(): Promise<Static<typeof StorageResponse>> }
  lifecycle: Lifecycle
  scheduler: SchedulerService
  /** Marks runs of dead processes `abandoned` (the CLI does this before it runs dates). */
  recoverStaleRuns(): Promise<BatchRunRow[]>
  /** Stops the scheduler first, then lets a running day finish within graceMs or interrupts it. */
  stop(graceMs: number): Promise<void>
  /** Closes the raw store and the store. */
  close(): Promise<void>
}

export async function createServices(config: Config, deps: ServiceDeps): Promise<Services> {
  const { log } = deps
  const clock = deps.clock ?? systemClock
  const timings: ReplicaTimings = { ...DEFAULT_REPLICA_TIMINGS, ...deps.replica }
  log.info({ config: configForLog(config) }, 'configuration')
  const opened = await openStores(config, deps, clock)
  const { store } = opened
  let source = opened.source

  // One cached InfluxDB check for /health and /metrics.
  const influxCheck = influxdbCheck(source, clock, config.influxdbFirst)
  // Batch figures come from the run ledger at scrape time; NBP and InfluxDB modules report through it.
  const metrics = createMetrics({
    ledger: databaseLedger(store, config, clock),
    ...(config.influxdbFirst ? { influxdbUp: async () => (await influxCheck()).status === 'up' } : {}),
  })
  if (config.influxdbFirst) source = withQueryMetrics(source, metrics)
  const rates: RateProvider =
    deps.rates ??
    createRateProvider({
      store,
      nbp: withFetchMetrics(
        createNbpClient({ baseUrl: config.NBP_API_URL, timeoutMs: config.NBP_TIMEOUT_MS, maxRetries: config.NBP_MAX_RETRIES, ...deps.nbp }),
        metrics,
      ),
      policy: config.EXCHANGE_RATE_POLICY,
      clock,
      log,
    })
  const lifecycle = createLifecycle(config, { store, clock, log, ...deps.lifecycle })
  const batch = createBatchService({
    store,
    source,
    rates,
    clock,
    log,
    timeZone: config.BUSINESS_TIMEZONE,
    defaultMarkupRate: config.defaultMarkupRate,
    owner: defaultOwner(deps.liveness?.host),
    heartbeatMs: timings.heartbeatMs,
    // A failed day is reported at once (ALERT_WEBHOOK_URL); delivery never throws. /metrics reads the ledger itself.
    onRunFinished: (run) => void lifecycle.alertOnRun(run),
    perClientConcurrency:
      config.influxdbFirst && config.INFLUXDB_AGGREGATION_MODE === 'per-client' ? config.INFLUXDB_AGGREGATION_BATCH_SIZE : undefined,
  })
  log.info({ dataSource: source.dataSource, dialect: source.dialect }, 'raw usage store selected')
  const today = createTodayView({ store, source, clock, timeZone: config.BUSINESS_TIMEZONE, defaultMarkupRate: config.defaultMarkupRate })

  const liveness = { ...deps.liveness, staleAfterMs: timings.staleAfterMs }
  const recoverStaleRuns = () => abandonStaleRuns({ store, clock, log, batch, ...liveness })
  const scheduler = createSchedulerService(config, { store, batch, clock, log, lifecycle, timers: deps.timers, recoverStaleRuns, liveness, timings })
  const health = createHealthChecks({ config, clock, store, source, rates, influxCheck, scheduler, retentionInfo: lifecycle.retentionInfo })
  const storage = {
    report: async () => ({
      retention: lifecycle.retentionInfo(),
      ...(await storageReport({ store, timeZone: config.BUSINESS_TIMEZONE, archiveDir: config.RAW_ARCHIVE_DIR })),
    }),
  }

  return {
    config,
    clock,
    log,
    store,
    source,
    rates,
    metrics,
    influxCheck,
    batch,
    today,
    health,
    storage,
    lifecycle,
    scheduler,
    recoverStaleRuns,
    async stop(graceMs) {
      // The scheduler first, so no tick starts new days while the batch drains.
      await scheduler.stop()
      await batch.stop(graceMs)
    },
    async close() {
      await source.close()
      await store.close()
    },
  }
}

/**
 * The store and the raw store the configuration names. Migrations run here, before the server
 * listens (docs/data-model.md#tables).
 */
async function openStores(config: Config, deps: ServiceDeps, clock: Clock): Promise<{ store: Store; source: UsageSource }> {
  const { log } = deps
  const createdAtClock = deps.createdAtClock ?? clock
  if (config.DATABASE_URL !== undefined) {
    // Loaded only here: the default SQLite mode never loads the PostgreSQL driver.
    const { openPostgresStore } = await import('./db/postgres/store.js')
    const { createPostgresSource } = await import('./sources/postgres.js')
    const store = await openPostgresStore({ url: config.DATABASE_URL, clock: createdAtClock, log })
    log.info({ database: redactText(config.DATABASE_URL) }, 'database open, migrations applied')
    try {
      const source = config.influxdbFirst ? await createInfluxSource(config, { log, clock, retry: deps.influxRetry }) : createPostgresSource({ store, clock })
      return { store, source }
    } catch (e) {
      await store.close()
      throw e
    }
  }
  const sqlite = openSqliteStore({ path: config.SQLITE_PATH, clock: createdAtClock, log, ...deps.sqlite })
  log.info({ sqlite: config.SQLITE_PATH }, 'database open, migrations applied')
  const store: Store = sqlite
  try {
    // With INFLUXDB_QUERY_LANGUAGE=auto this returns at once, InfluxDB up or not (detection runs in the background).
    const configured = async (): Promise<UsageSource> =>
      config.influxdbFirst ? createInfluxSource(config, { log, clock, retry: deps.influxRetry }) : createSqliteSource({ store: sqlite, clock })
    return { store, source: deps.source ? await deps.source(sqlite, configured) : await configured() }
  } catch (e) {
    await store.close()
    throw e
  }
}

/**
 * The store the configuration names, on its own (the CLI's `status` and `migrate`): PostgreSQL with
 * DATABASE_URL (no SQLite file is created then), else the SQLite file at SQLITE_PATH.
 */
export async function openStore(config: Config, options: { log?: Logger; clock?: Clock; migrate?: boolean } = {}): Promise<Store> {
  if (config.DATABASE_URL !== undefined) {
    const { openPostgresStore } = await import('./db/postgres/store.js')
    return openPostgresStore({ url: config.DATABASE_URL, ...options })
  }
  return openSqliteStore({ path: config.SQLITE_PATH, ...options })
}

interface SchedulerServiceDeps {
  store: Store
  batch: BatchService
  clock: Clock
  log: Logger
  lifecycle: Lifecycle
  timers?: Timers
  recoverStaleRuns: () => Promise<BatchRunRow[]>
  liveness?: ServiceDeps['liveness'] & { staleAfterMs?: number }
  timings: ReplicaTimings
}

function createSchedulerService(config: Config, deps: SchedulerServiceDeps): SchedulerService {
  const { store, log, timings } = deps
  const timers = deps.timers ?? systemTimers
  // Several processes sharing the store elect the one whose scheduler ticks; alone, this one leads.
  const lock = config.BATCH_SCHEDULER_ENABLED ? store.schedulerLock?.() : undefined
  const shared = store.schedulerLock !== undefined
  const leader: Leader = lock
    ? createLeader({ lock, log, timers: deps.timers, intervalMs: timings.leaderIntervalMs, checkTimeoutMs: timings.leaderCheckTimeoutMs })
    : config.BATCH_SCHEDULER_ENABLED
      ? createSingleProcessLeader()
      : notLeading
  const scheduler = createScheduler({
    batch: deps.batch,
    store,
    clock: deps.clock,
    log,
    cron: config.BATCH_SCHEDULE_CRON,
    timeZone: config.BUSINESS_TIMEZONE,
    lookbackDays: config.BATCH_LOOKBACK_DAYS,
    catchupDays: config.BATCH_CATCHUP_DAYS,
    timers: deps.timers,
    isLeader: () => leader.isLeader(),
    // Retention only removes days a success already covers; alerts look at the tick's outcome.
    afterTick: () => deps.lifecycle.afterTick(),
    ...deps.liveness,
  })
  let stopping = false
  let started = false
  let recoveryTimer: unknown
  let recovering: Promise<unknown> | undefined

  /**
   * With a shared store every replica, leader or not, looks for runs whose owner died, so a dead
   * replica's date is free again within docs/postgresql.md#runs-whose-replica-died's bound.
   */
  function armRecovery() {
    if (stopping || !shared) return
    recoveryTimer = timers.setTimeout(() => {
      recoveryTimer = undefined
      recovering = deps
        .recoverStaleRuns()
        .catch((error: unknown) => log.warn({ err: error }, 'looking for dead runs failed; trying again later'))
        .finally(() => {
          recovering = undefined
          armRecovery()
        })
    }, timings.recoveryIntervalMs)
    ;(recoveryTimer as { unref?: () => void } | undefined)?.unref?.()
  }

  // A replica that takes the leadership over runs the catch-up a starting leader would: the days the
  // old leader left undone (dead runs first marked abandoned).
  leader.onChange((isLeader) => {
    if (isLeader && started && !stopping) void scheduler.catchUpAsLeader()
  })

  return {
    enabled: () => config.BATCH_SCHEDULER_ENABLED,
    nextRun: () => (config.BATCH_SCHEDULER_ENABLED ? scheduler.nextRun() : null),
    isLeader: () => leader.isLeader(),
    async start(jobs) {
      // A signal may have arrived while the server was still starting.
      if (stopping) return
      armRecovery()
      if (!config.BATCH_SCHEDULER_ENABLED) {
        // A replica without a scheduler still reclaims dead runs, so their dates can be run again.
        await deps.recoverStaleRuns()
        log.info('scheduler disabled (BATCH_SCHEDULER_ENABLED=false): no ticks, no catch-up')
        return
      }
      await leader.start()
      if (stopping) return
      const ledAtStart = leader.isLeader()
      const ticks = jobs && cronJobTrigger(jobs, { expression: config.BATCH_SCHEDULE_CRON, timeZone: config.BUSINESS_TIMEZONE }, log)
      await scheduler.start(ticks)
      started = true
      // Led from a moment after the start-up catch-up looked: this replica owes that catch-up now.
      if (!ledAtStart && leader.isLeader()) void scheduler.catchUpAsLeader()
    },
    async stop() {
      stopping = true
      if (recoveryTimer !== undefined) timers.clearTimeout(recoveryTimer)
      recoveryTimer = undefined
      scheduler.stop()
      await leader.stop()
      await recovering
    },
    idle: () => scheduler.idle(),
    catchUpDone: () => scheduler.catchUpDone(),
  }
}

/** BATCH_SCHEDULER_ENABLED=false: this replica never runs ticks, so it never leads. */
const notLeading: Leader = {
  isLeader: () => false,
  onChange: () => () => {},
  start: async () => {},
  stop: async () => {},
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
    get externalDeletes() {
      return source.externalDeletes?.bind(source)
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
