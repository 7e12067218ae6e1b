import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { HealthResponse, ProbeResponse } from '../schemas/health.js'

/** A check's answer as it is: its status code (200 or 503) and its body. */
function answer(reply: FastifyReply, { statusCode, body }: { statusCode: number; body: unknown }) {
  return reply.code(statusCode).send(body)
}

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { health } = app.services

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
    async (_request, reply) => answer(reply, await health.ready()),
  )

  app.get(
    '/health',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Overall health: healthy, degraded (200) or unhealthy (503), with each component',
        description:
          'Unhealthy only when SQLite does not accept a write or migrations are missing; InfluxDB, NBP and owed or failed ' +
          'scheduled days make it degraded.',
        response: { 200: HealthResponse, 503: HealthResponse },
      },
    },
    async (_request, reply) => answer(reply, await health.report()),
  )
}
