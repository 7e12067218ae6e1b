// What /health and /health/ready answer (docs/operations.md#health): readiness from the store alone;
// overall health from the store, the raw store (InfluxDB), NBP and this replica's scheduler.
import type { Static } from 'typebox'
import type { Clock } from './clock.js'
import type { Config } from './config.js'
import type { Store } from './db/store.js'
import type { RateProvider } from './rates/types.js'
import { redactDeep, redactText } from './redact.js'
import type { HealthResponse, ProbeResponse } from './schemas/health.js'
import { compileSchedule } from './cron.js'
import { catchUpWindow, datesBehind } from './scheduler/due.js'
import type { SchedulerHandle } from './scheduler/scheduler.js'
import type { StoreStatus } from './sources/check.js'
import type { UsageSource } from './sources/types.js'

type Health = Static<typeof HealthResponse>
type Component = Health['services']['sqlite']
type OverallStatus = Health['status']

/** An answer and the status code it goes with. */
export interface Answer<T> {
  statusCode: 200 | 503
  body: T
}

export interface HealthDeps {
  config: Config
  clock: Clock
  store: Store
  source: UsageSource
  rates: RateProvider
  /** InfluxDB's state, cached (sources/check.ts); `disabled` in the embedded mode. */
  influxCheck: () => Promise<StoreStatus>
  scheduler: SchedulerHandle
  retentionInfo: () => Health['raw_retention']
}

export type HealthChecks = ReturnType<typeof createHealthChecks>

/**
 * Overall status: unhealthy (503) only when this replica's database cannot do its job; degraded
 * when a dependency is off (InfluxDB, NBP) or this replica's scheduler is behind or failing. A
 * component that is `disabled` (InfluxDB in the embedded mode, the scheduler turned off) is fine.
 */
export function overallStatus(services: Record<'sqlite' | 'influxdb' | 'nbp' | 'scheduler', Component>): OverallStatus {
  if (services.sqlite.status === 'down') return 'unhealthy'
  const off = (c: Component) => c.status === 'down' || c.status === 'degraded'
  if (off(services.nbp) || off(services.scheduler) || off(services.influxdb)) return 'degraded'
  return 'healthy'
}

export function createHealthChecks(deps: HealthDeps) {
  const { config, clock, store, rates, scheduler } = deps
  const schedule = compileSchedule(config.BATCH_SCHEDULE_CRON, config.BUSINESS_TIMEZONE)

  /** What the rate provider remembers of its last NBP attempts; reading it never calls NBP. */
  function nbpCheck(): Component {
    const health = rates.health?.()
    if (!health) return { status: 'unknown', detail: { reason: 'no NBP rate provider is configured' } }
    const errorMs = health.last_error_at ? Date.parse(health.last_error_at) : null
    const successMs = health.last_success_at ? Date.parse(health.last_success_at) : null
    // The most recent attempt decides: an error after the last success means NBP is failing now
    // (an error stamped the same millisecond as a success counts as the later one).
    const failing = errorMs !== null && (successMs === null || errorMs >= successMs)
    const status = failing ? 'down' : successMs !== null ? 'up' : 'unknown'
    return { status, detail: redactDeep({ ...health }) }
  }

  /**
   * This replica's scheduler and the run ledger. `missing_days` are the due dates of the catch-up
   * window without a successful run (scheduler/due.ts, the same list behind the
   * usage_batch_days_behind gauge). Running, the scheduler is degraded when a day is missing or its
   * newest automatic run (schedule or catch-up) failed and no later run of that date succeeded.
   * Turned off (BATCH_SCHEDULER_ENABLED=false) it is `disabled`: this replica owes nothing, so
   * nothing here degrades it; the same facts stay in the detail and in /metrics.
   */
  async function schedulerCheck(): Promise<Component> {
    const enabled = scheduler.enabled()
    try {
      const missingDays = await datesBehind({ store, clock, timeZone: config.BUSINESS_TIMEZONE, schedule, catchupDays: config.BATCH_CATCHUP_DAYS })
      const lastAuto = await store.runs.lastClosed(['schedule', 'catchup'])
      const lastAutoFailed =
        lastAuto !== undefined && lastAuto.status === 'failed' && !(await store.runs.hasSuccessBeside(lastAuto.processing_date, lastAuto.id, 'after'))
      const window = catchUpWindow(clock, config.BUSINESS_TIMEZONE, config.BATCH_CATCHUP_DAYS)
      const createdMs = await store.metadata.createdAt()
      const detail = {
        enabled,
        next_run: scheduler.nextRun(),
        last_success_date: await store.runs.lastSuccessDate(),
        last_scheduled_run: lastAuto
          ? {
              id: lastAuto.id,
              processing_date: lastAuto.processing_date,
              trigger: lastAuto.trigger,
              status: lastAuto.status,
              finished_at: lastAuto.finished_at,
              error_message: lastAuto.error_message === null ? null : redactText(lastAuto.error_message),
            }
          : null,
        missing_days: missingDays,
        catch_up_window: window.length > 0 ? { from: window[0], to: window.at(-1) } : null,
        database_created_at: createdMs === null ? null : new Date(createdMs).toISOString(),
      }
      if (!enabled) return { status: 'disabled', detail }
      return { status: lastAutoFailed || missingDays.length > 0 ? 'degraded' : 'up', detail }
    } catch {
      // The store is failing: its own component says so (and the log has why).
      return { status: 'unknown', detail: { enabled, error: 'the run ledger could not be read' } }
    }
  }

  return {
    /** Readiness: the database answers a read and every migration is applied. Nothing remote. */
    async ready(): Promise<Answer<Static<typeof ProbeResponse>>> {
      const readiness = await store.ready()
      // `sqlite` names the store whichever engine holds it (docs/postgresql.md#what-the-api-says).
      return readiness.ready
        ? { statusCode: 200, body: { status: 'ok', checks: { sqlite: 'up', database: 'up' } } }
        : { statusCode: 503, body: { status: 'unavailable', checks: { sqlite: 'down', database: 'down' }, reason: readiness.reason } }
    },

    /** Every component, and the overall status (503 when unhealthy). */
    async report(): Promise<Answer<Health>> {
      const [storeHealth, influxdb, schedulerStatus] = await Promise.all([store.health(), deps.influxCheck(), schedulerCheck()])
      // One component under two names: `sqlite` as the contract has always named the store, and
      // `database`, which says the engine (docs/postgresql.md#what-the-api-says).
      const database = { ...storeHealth, detail: { engine: store.engine, ...storeHealth.detail } }
      const services = { sqlite: database, database, influxdb, nbp: nbpCheck(), scheduler: schedulerStatus }
      const status = overallStatus(services)
      return {
        statusCode: status === 'unhealthy' ? 503 : 200,
        body: {
          status,
          influxdb_first_enabled: config.influxdbFirst,
          data_source: deps.source.dataSource,
          services,
          raw_retention: deps.retentionInfo(),
        },
      }
    },
  }
}
