import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

export const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { metrics } = app.services
  app.get(
    '/metrics',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text format 0.0.4' }) },
      },
    },
    async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()),
  )
}
