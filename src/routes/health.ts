import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthResponse, ProbeResponse } from '../schemas/health.js'

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
    async (_request, reply) => {
      const { statusCode, body } = await health.ready()
      return reply.code(statusCode).send(body)
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
      const { statusCode, body } = await health.report()
      return reply.code(statusCode).send(body)
    },
  )
}
