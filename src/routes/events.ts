import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import createError from '@fastify/error'
import { inRequestConflicts, normalizeEvents } from '../ingest.js'
import { MAX_LISTED_ERRORS, validationItemErrors } from '../plugins/errors.js'
import { conflictError } from '../sources/event-content.js'
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
      // Schema errors and the rules a schema cannot say (naive timestamps…) are reported together.
      attachValidation: true,
      schema: {
        tags: ['usage'],
        summary: 'Ingest raw usage records',
        description:
          `Up to ${MAX_EVENTS_PER_REQUEST} records. All valid or none stored: a 400 lists every invalid record by index and field ` +
          '(schema errors; naive timestamps or before 2000-01-01T00:00:00Z; ill-formed Unicode in any string; NUL in ids; ' +
          'total_tokens other than input + output). Idempotent by request_id: a record already stored with the same content ' +
          '(every stored field after normalisation) counts in `duplicates`, never twice; with other content, or voided, or ' +
          'repeated in the request with other content, the request is refused with 409 listing the conflicting records. ' +
          'JSON only: other content types get 415.',
        body: IngestBody,
        response: {
          200: IngestResponse,
          400: ErrorResponse,
          401: ErrorResponse,
          403: ErrorResponse,
          409: ErrorResponse,
          413: ErrorResponse,
          415: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      const schemaErrors = request.validationError
        ? validationItemErrors(request.validationError.validation, request.validationError.validationContext)
        : []
      const items = Array.isArray((request.body as { events?: unknown } | undefined)?.events) ? request.body.events : []
      // Records that failed the schema are not read further: their fields may be of any type.
      const rejected = new Set(schemaErrors.map((e) => e.index))
      const { events, errors: ruleErrors } = normalizeEvents(
        items.filter((_, i) => !rejected.has(i)),
        clock.now(),
        items.map((_, i) => i).filter((i) => !rejected.has(i)),
      )
      const errors = [...schemaErrors, ...ruleErrors].sort((a, b) => (a.index ?? -1) - (b.index ?? -1))
      if (request.validationError && (schemaErrors.length === 0 || rejected.has(undefined))) {
        // A body-level problem (not an object, missing `events`, too many records): say it as is.
        throw Object.assign(request.validationError, { statusCode: 400 })
      }
      if (errors.length > 0) {
        // Counted over every error, not the listed ones: 150 invalid records say 150.
        throw Object.assign(new InvalidEventsError(`${new Set(errors.map((e) => e.index)).size} invalid record(s); nothing was stored`), {
          itemErrors: errors.slice(0, MAX_LISTED_ERRORS),
        })
      }
      const conflicts = inRequestConflicts(events)
      if (conflicts.length > 0) throw conflictError(conflicts, MAX_LISTED_ERRORS)
      return source.ingest(events)
    },
  )
}
