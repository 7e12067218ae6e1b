import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from 'typebox'
import { migrationsApplied } from '../db/open.js'
import { databaseCreatedAt } from '../db/metadata.js'
import { retentionInfo } from '../lifecycle/retention.js'
import { hasSuccessBeside, lastClosedRun, lastSuccessDate } from '../db/runs.js'
import { compileSchedule } from '../scheduler/cron.js'
import { catchUpWindow, datesBehind } from '../scheduler/due.js'
import { HealthResponse, ProbeResponse } from '../schemas/health.js'
import { redactDeep, redactText } from '../redact.js'

type Component = Static<typeof HealthResponse>['services']['sqlite']
type OverallStatus = Static<typeof HealthResponse>['status']

export { REMOTE_CHECK_TTL_MS } from '../sources/check.js'

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

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, config, clock, rates, influxCheck } = app.services
  const schedule = compileSchedule(config.BATCH_SCHEDULE_CRON, config.BUSINESS_TIMEZONE)

  /** Readiness: the database answers a read and every migration is applied. Nothing remote. */
  function readable(): { ready: boolean; error?: string } {
    try {
      return migrationsApplied(db) ? { ready: true } : { ready: false, error: 'migrations not applied' }
    } catch (e) {
      return { ready: false, error: (e as Error).message }
    }
  }

  /** SQLite accepts a write and the schema is current. Local and cheap: never cached. */
  function sqliteCheck(): Component {
    const started = performance.now()
    const client = db.$client
    let busyTimeoutMs: number | undefined
    let migrated = false
    try {
      busyTimeoutMs = client.pragma('busy_timeout', { simple: true }) as number
      migrated = migrationsApplied(db)
      if (!migrated) return { status: 'down', detail: { migrations_applied: false } }
      // No waiting on another process's write lock inside a probe: the busy timeout would block
      // the event loop. A lock held elsewhere still proves the file writable (handled below).
      client.pragma('busy_timeout = 0')
      // A write statement that changes nothing, rolled back. BEGIN IMMEDIATE alone is not enough:
      // SQLite grants it on a read-only connection; the write itself is refused (SQLITE_READONLY).
      client.exec('BEGIN IMMEDIATE; DELETE FROM __drizzle_migrations WHERE 0; ROLLBACK')
      return {
        status: 'up',
        detail: { writable: true, migrations_applied: true, latency_ms: Math.round((performance.now() - started) * 1000) / 1000 },
      }
    } catch (e) {
      if (client.inTransaction) client.exec('ROLLBACK')
      const code = (e as { code?: string }).code
      if (code?.startsWith('SQLITE_BUSY')) return { status: 'up', detail: { writable: true, busy: true, migrations_applied: migrated } }
      return { status: 'down', detail: { writable: false, migrations_applied: migrated, error: (e as Error).message } }
    } finally {
      if (busyTimeoutMs !== undefined) client.pragma(`busy_timeout = ${busyTimeoutMs}`)
    }
  }

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
   * window without a successful run (src/scheduler/due.ts, the same list behind the
   * usage_batch_days_behind gauge). Running, the scheduler is degraded when a day is missing or its
   * newest automatic run (schedule or catch-up) failed and no later run of that date succeeded.
   * Turned off (BATCH_SCHEDULER_ENABLED=false) it is `disabled`: this replica owes nothing, so
   * nothing here degrades it; the same facts stay in the detail and in /metrics.
   */
  function schedulerCheck(): Component {
    const scheduler = app.services.scheduler
    const enabled = scheduler !== undefined
    try {
      const missingDays = datesBehind({ db, clock, timeZone: config.BUSINESS_TIMEZONE, schedule, catchupDays: config.BATCH_CATCHUP_DAYS })
      const lastAuto = lastClosedRun(db, ['schedule', 'catchup'])
      const lastAutoFailed =
        lastAuto !== undefined && lastAuto.status === 'failed' && !hasSuccessBeside(db, lastAuto.processing_date, lastAuto.id, 'after')
      const window = catchUpWindow(clock, config.BUSINESS_TIMEZONE, config.BATCH_CATCHUP_DAYS)
      const createdMs = databaseCreatedAt(db)
      const detail = {
        enabled,
        next_run: scheduler?.nextRun() ?? null,
        last_success_date: lastSuccessDate(db),
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
    } catch (e) {
      return { status: 'unknown', detail: { enabled, error: (e as Error).message } }
    }
  }

  app.get(
    '/health/live',
    {
      config: { auth: 'public' },
      schema: { tags: ['health'], summary: 'Liveness: 200 while the process serves', response: { 200: ProbeResponse } },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/health/ready',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Readiness: this replica can serve its reads (its database answers, migrations applied); InfluxDB, NBP and the scheduler never take it down',
        response: { 200: ProbeResponse, 503: ProbeResponse },
      },
    },
    async (_request, reply) => {
      const { ready, error } = readable()
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ok' : 'unavailable', checks: { sqlite: ready ? 'up' : 'down' }, ...(error ? { reason: error } : {}) })
    },
  )

  app.get(
    '/health',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Overall health: healthy, degraded (200) or unhealthy (503), with each component',
        response: { 200: HealthResponse, 503: HealthResponse },
      },
    },
    async (_request, reply) => {
      const services = { sqlite: sqliteCheck(), influxdb: await influxCheck(), nbp: nbpCheck(), scheduler: schedulerCheck() }
      const status = overallStatus(services)
      return reply.code(status === 'unhealthy' ? 503 : 200).send({
        status,
        influxdb_first_enabled: config.influxdbFirst,
        data_source: app.services.source.dataSource,
        services,
        raw_retention: retentionInfo(config),
      })
    },
  )
}
