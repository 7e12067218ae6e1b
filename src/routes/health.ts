import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from 'typebox'
import { addDays, yesterday, type Clock } from '../clock.js'
import { migrationsApplied } from '../db/open.js'
import { retentionInfo } from '../lifecycle/retention.js'
import { datesWithSuccess, hasSuccessBeside, lastClosedRun, lastSuccessDate } from '../db/runs.js'
import { HealthResponse, ProbeResponse } from '../schemas/health.js'
import { redactDeep, redactText } from '../redact.js'

type Component = Static<typeof HealthResponse>['services']['sqlite']
type OverallStatus = Static<typeof HealthResponse>['status']

/**
 * How long a remote check (InfluxDB) is reused. Kubernetes probes, Prometheus and dashboards may
 * all poll /health and /health/ready; together they reach InfluxDB at most once per this period.
 */
export const REMOTE_CHECK_TTL_MS = 5_000

/**
 * Reuses a check's result for `ttlMs` of the injected clock, and joins a check in progress
 * instead of starting a second one.
 */
export function cachedCheck<T>(clock: Clock, ttlMs: number, run: () => Promise<T>): () => Promise<T> {
  let cached: { atMs: number; value: T } | undefined
  let pending: Promise<T> | undefined
  return () => {
    const nowMs = clock.now()
    if (cached && nowMs - cached.atMs < ttlMs) return Promise.resolve(cached.value)
    pending ??= run()
      .then((value) => {
        cached = { atMs: nowMs, value }
        return value
      })
      .finally(() => {
        pending = undefined
      })
    return pending
  }
}

/** Overall status: unhealthy when the service cannot do its job, degraded when something is off. */
export function overallStatus(services: Record<'sqlite' | 'influxdb' | 'nbp' | 'scheduler', Component>, influxdbFirst: boolean): OverallStatus {
  if (services.sqlite.status === 'down') return 'unhealthy'
  if (influxdbFirst && services.influxdb.status === 'down') return 'unhealthy'
  const off = (c: Component) => c.status === 'down' || c.status === 'degraded'
  if (off(services.nbp) || off(services.scheduler) || off(services.influxdb)) return 'degraded'
  return 'healthy'
}

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, source, config, clock, rates } = app.services

  /** SQLite accepts a write and the schema is current. Local and cheap: never cached. */
  function sqliteCheck(): Component {
    const started = performance.now()
    const client = db.$client
    const busyTimeoutMs = client.pragma('busy_timeout', { simple: true }) as number
    let migrated = false
    try {
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
      client.pragma(`busy_timeout = ${busyTimeoutMs}`)
    }
  }

  const influxCheck = cachedCheck(clock, REMOTE_CHECK_TTL_MS, async (): Promise<Component> => {
    if (!config.influxdbFirst) return { status: 'disabled', detail: {} }
    const checkedAt = new Date(clock.now()).toISOString()
    try {
      const result = await source.check()
      return { status: result.status, detail: { ...redactDeep(result.detail), checked_at: checkedAt } }
    } catch (e) {
      return { status: 'down', detail: { error: redactText((e as Error).message), checked_at: checkedAt } }
    }
  })

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
   * The scheduler and the run ledger: degraded when the newest automatic run (schedule or
   * catch-up) failed and no later run of its date succeeded, or when a day in the catch-up window
   * before yesterday has no successful run. Yesterday itself is excluded: its run is due later today.
   */
  function schedulerCheck(): Component {
    const scheduler = app.services.scheduler
    const enabled = scheduler !== undefined
    try {
      const lastDay = yesterday(clock, config.BUSINESS_TIMEZONE)
      const window = Array.from({ length: config.BATCH_CATCHUP_DAYS }, (_, i) => addDays(lastDay, -(i + 1)))
      const succeeded = datesWithSuccess(db, window)
      const missingDays = window.filter((d) => !succeeded.has(d)).sort()
      const lastAuto = lastClosedRun(db, ['schedule', 'catchup'])
      const lastAutoFailed =
        lastAuto !== undefined && lastAuto.status === 'failed' && !hasSuccessBeside(db, lastAuto.processing_date, lastAuto.id, 'after')
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
      }
      const status = lastAutoFailed || missingDays.length > 0 ? 'degraded' : enabled ? 'up' : 'disabled'
      return { status, detail }
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
        summary: 'Readiness: SQLite writable, migrations applied, InfluxDB answering (InfluxDB-first)',
        response: { 200: ProbeResponse, 503: ProbeResponse },
      },
    },
    async (_request, reply) => {
      const sqlite = sqliteCheck()
      const influx = await influxCheck()
      const checks = { sqlite: sqlite.status, influxdb: influx.status }
      const ready = sqlite.status === 'up' && influx.status !== 'down'
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', checks })
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
      const status = overallStatus(services, config.influxdbFirst)
      return reply.code(status === 'unhealthy' ? 503 : 200).send({
        status,
        influxdb_first_enabled: config.influxdbFirst,
        data_source: source.dataSource,
        services,
        raw_retention: retentionInfo(config),
      })
    },
  )
}
