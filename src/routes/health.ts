import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from 'typebox'
import { migrationsApplied } from '../db/open.js'
import { retentionInfo } from '../lifecycle/retention.js'
import { HealthResponse, ProbeResponse } from '../schemas/health.js'

type Component = Static<typeof HealthResponse>['services']['sqlite']

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, source, config } = app.services

  /** SQLite can take a write lock and the schema is current. */
  function sqliteCheck(): Component {
    const started = performance.now()
    try {
      // BEGIN IMMEDIATE takes the write lock without writing: it fails on a read-only or broken file.
      db.$client.exec('BEGIN IMMEDIATE; ROLLBACK')
      const migrated = migrationsApplied(db)
      return {
        status: migrated ? 'up' : 'down',
        detail: { writable: true, migrations_applied: migrated, latency_ms: Math.round((performance.now() - started) * 1000) / 1000 },
      }
    } catch (e) {
      return { status: 'down', detail: { writable: false, error: (e as Error).message } }
    }
  }

  /** The rate source's own record of its last fetches; no network call from a probe. */
  function nbpComponent(): Component {
    const h = app.services.rates.health?.()
    if (!h) return { status: 'unknown', detail: {} }
    const failing = h.last_error_at !== null && (h.last_success_at === null || h.last_error_at > h.last_success_at)
    return { status: failing ? 'degraded' : h.last_success_at ? 'up' : 'unknown', detail: { ...h } }
  }

  async function influxCheck(): Promise<Component> {
    if (!config.influxdbFirst) return { status: 'disabled', detail: {} }
    try {
      return await source.check()
    } catch (e) {
      return { status: 'down', detail: { error: (e as Error).message } }
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
        summary: 'Overall health with each component',
        response: { 200: HealthResponse, 503: HealthResponse },
      },
    },
    async (_request, reply) => {
      const sqlite = sqliteCheck()
      const influxdb = await influxCheck()
      const nbp = nbpComponent()
      const scheduler: Component = app.services.scheduler
        ? { status: 'up', detail: { next_run: app.services.scheduler.nextRun() } }
        : { status: 'disabled', detail: {} }
      const unhealthy = sqlite.status === 'down' || influxdb.status === 'down'
      const status = unhealthy ? 'unhealthy' : 'healthy'
      return reply.code(unhealthy ? 503 : 200).send({
        status,
        influxdb_first_enabled: config.influxdbFirst,
        data_source: source.dataSource,
        services: { sqlite, influxdb, nbp, scheduler },
        raw_retention: retentionInfo(config),
      })
    },
  )
}
