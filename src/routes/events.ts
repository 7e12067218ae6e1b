import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { resolveRange } from '../date-range.js'
import { conflictError, InvalidEventsError, InvalidVoidError } from '../errors.js'
import { inRequestConflicts, normalizeEvents, textProblems } from '../ingest.js'
import { MAX_LISTED_ERRORS, validationItemErrors } from '../plugins/errors.js'
import { ErrorResponse, NotModified } from '../schemas/common.js'
import {
  EVENTS_BODY_LIMIT_BYTES,
  ExternalDeletesResponse,
  IngestBody,
  IngestResponse,
  MAX_EVENTS_PER_REQUEST,
  VoidBody,
  VoidedQuery,
  VoidedResponse,
  VoidResponse,
} from '../schemas/events.js'
import { dayWindow, localDateOf, today } from '../clock.js'
import { nanoToJson } from '../money.js'

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

/** The void routes (docs/api.md#voids): wrong usage leaves the bills, with an audit trail, and never comes back. */
export const voidRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { source, clock, config } = app.services
  const tz = config.BUSINESS_TIMEZONE

  app.post(
    '/usage/events/void',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['usage'],
        summary: 'Void raw usage records',
        description:
          'Raw usage in the SQLite file or in PostgreSQL (DATABASE_URL): each record found is moved to an audit table with the reason and time; no batch and no live read counts it ' +
          'again, and its request_id can never be ingested again (409) nor come back with an archive restore. Summaries already ' +
          'written change when their dates are rerun (`usage_dates`; POST /batch/run), which counts the corrections. ' +
          'InfluxDB-first: 409 with the exact InfluxQL DELETE statements (or InfluxDB 2.x delete predicates) for the points of those ' +
          'records, to run by hand; the service deletes nothing in InfluxDB.',
        body: VoidBody,
        response: { 200: VoidResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 409: ExternalDeletesResponse, 415: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const { request_ids: requestIds, reason } = request.body
      const errors: Array<{ index?: number; field: string; message: string }> = []
      requestIds.forEach((id, index) => {
        for (const problem of textProblems(id, true)) errors.push({ index, field: 'request_ids', message: problem })
      })
      if (reason.trim() === '') errors.push({ field: 'reason', message: 'must not be blank' })
      for (const problem of textProblems(reason, true)) errors.push({ field: 'reason', message: problem })
      if (errors.length > 0) {
        throw Object.assign(new InvalidVoidError(`${errors.length} invalid value(s); nothing was voided`), { itemErrors: errors.slice(0, MAX_LISTED_ERRORS) })
      }

      if (!source.voidEvents) {
        const external = source.externalDeletes ? await source.externalDeletes(requestIds) : undefined
        return reply.code(409).send({
          statusCode: 409,
          error: 'Conflict',
          message:
            'raw usage lives in InfluxDB, which this service does not delete from: run these deletes against InfluxDB, then rerun ' +
            'the affected dates (POST /batch/run)',
          dialect: external?.dialect ?? 'influxql',
          deletes: external?.deletes ?? [],
          not_found: external?.not_found ?? requestIds,
        })
      }
      const result = await source.voidEvents(requestIds, reason, clock.now())
      if (result.voided.length > 0) app.services.today.clear()
      const usageDates = [...new Set(result.voided.map((v) => localDateOf(v.occurred_at_ms, tz)))].sort()
      request.log.info(
        { voided: result.voided.length, notFound: result.not_found.length, alreadyVoided: result.already_voided.length, usageDates, reason },
        'usage records voided',
      )
      return { voided: result.voided.length, not_found: result.not_found, already_voided: result.already_voided, usage_dates: usageDates }
    },
  )

  app.get(
    '/usage/events/voided',
    {
      config: { auth: 'read', conditional: 'content' },
      schema: {
        tags: ['usage'],
        summary: 'Voided raw usage records',
        description:
          'Every voided record whose business date lies in from..to (inclusive; default the current month so far), with the original ' +
          'record, the reason and when it was voided. Empty in InfluxDB-first mode, where records are deleted in InfluxDB instead.',
        querystring: VoidedQuery,
        response: { 200: VoidedResponse, 304: NotModified, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async (request) => {
      const { from, to } = resolveRange(request.query, today(clock, tz))
      const window = { startMs: dayWindow(from, tz).startMs, endMs: dayWindow(to, tz).endMs }
      const voids = (await source.listVoids?.(window)) ?? []
      return {
        from,
        to,
        voids: voids.map((v) => ({
          request_id: v.request_id,
          usage_date: localDateOf(v.occurred_at_ms, tz),
          reason: v.reason,
          voided_at: new Date(v.voided_at_ms).toISOString(),
          record: {
            client_org_id: v.client_org_id,
            model: v.model,
            external_user: v.external_user,
            input_tokens: v.input_tokens,
            output_tokens: v.output_tokens,
            total_tokens: v.total_tokens,
            cost_usd: nanoToJson(v.cost_nano_usd, request.query.money ?? 'number'),
            timestamp: new Date(v.occurred_at_ms).toISOString(),
            received_at: new Date(v.received_at_ms).toISOString(),
          },
        })),
      }
    },
  )
}
