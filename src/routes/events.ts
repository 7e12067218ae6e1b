import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import createError from '@fastify/error'
import { normalizeEvents, type FieldError } from '../ingest.js'
import { ErrorResponse } from '../schemas/common.js'
import { EVENTS_BODY_LIMIT_BYTES, IngestBody, IngestResponse, MAX_EVENTS_PER_REQUEST } from '../schemas/events.js'

const InvalidEventsError = createError('FST_INVALID_EVENTS', '%s', 400)

export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { source, clock } = app.services

  app.post(
    '/usage/events',
    {
      config: { auth: 'ingest' },
      bodyLimit: EVENTS_BODY_LIMIT_BYTES,
      schema: {
        tags: ['usage'],
        summary: 'Ingest raw usage records',
        description:
          `Up to ${MAX_EVENTS_PER_REQUEST} records. All valid or none stored: a 400 lists every invalid record by index. ` +
          'Idempotent by request_id: a record already stored counts in `duplicates`, never twice.',
        body: IngestBody,
        response: {
          200: IngestResponse,
          400: ErrorResponse,
          401: ErrorResponse,
          403: ErrorResponse,
          413: ErrorResponse,
          415: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      const { events, errors } = normalizeEvents(request.body.events, clock.now())
      if (errors.length > 0) {
        throw Object.assign(new InvalidEventsError(`${errors.length} invalid record(s); nothing was stored`), {
          itemErrors: errors.slice(0, 100) satisfies FieldError[],
        })
      }
      return source.ingest(events)
    },
  )
}
