import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { daysBetween, yesterday } from '../clock.js'
import { BadRequestError, NotFoundError } from '../errors.js'
import type { BatchRunRow } from '../services.js'
import { ErrorResponse, RunWithErrors, type RunBody } from '../schemas/common.js'
import {
  ListRunsQuery,
  ListRunsResponse,
  RunIdParam,
  RunRequestBody,
  RunRequestQuery,
  RunsResponse,
  StatusResponse,
} from '../schemas/batch.js'
import { datesInRange } from '../clock.js'
import { StorageResponse } from '../schemas/storage.js'
import { redactText } from '../redact.js'

export function runToJson(row: BatchRunRow): RunBody {
  return {
    id: row.id,
    processing_date: row.processing_date,
    trigger: row.trigger,
    status: row.status,
    started_at: row.started_at,
    finished_at: row.finished_at,
    duration_ms: row.duration_ms,
    data_source: row.data_source,
    clients_processed: row.clients_processed,
    records_processed: row.records_processed,
    summaries_written: row.summaries_written,
    data_corrections: row.data_corrections,
    exchange_rate_usd_pln: row.exchange_rate_usd_pln === null ? null : Number(row.exchange_rate_usd_pln),
    // Rows closed by an earlier version were stored unredacted.
    warnings: (JSON.parse(row.warnings) as string[]).map(redactText),
    error_message: row.error_message === null ? null : redactText(row.error_message),
  }
}

function encodeCursor(id: number): string {
  return Buffer.from(JSON.stringify({ before: id })).toString('base64url')
}

function decodeCursor(cursor: string): number {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { before?: unknown }
    if (typeof parsed.before === 'number' && Number.isSafeInteger(parsed.before) && parsed.before > 0) return parsed.before
  } catch {
    // fall through to the error below
  }
  throw new BadRequestError('cursor is not one this service issued')
}

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse }

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A request without a body is read as `{}`; the OpenAPI document marks such a body optional. */
    bodyOptional?: boolean
  }
}

export const batchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, clock, batch, store, scheduler, storage } = app.services
  const tz = config.BUSINESS_TIMEZONE

  app.addHook('preValidation', async (request) => {
    if (request.routeOptions.config.bodyOptional && request.body === undefined) request.body = {}
  })

  app.post(
    '/batch/run',
    {
      // No body at all means "yesterday": what the scheduler would run next.
      config: { auth: 'admin', bodyOptional: true },
      schema: {
        tags: ['batch'],
        summary: 'Run the batch for a date or a range',
        description:
          'Each date is its own run, processed oldest first. A date already running is joined, never run twice. ' +
          'Dates after yesterday are refused: today is served live by /usage/clients/{id}/today.',
        body: RunRequestBody,
        querystring: RunRequestQuery,
        response: { 200: RunsResponse, 202: RunsResponse, ...errors, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const { date, from, to } = request.body
      const latest = yesterday(clock, tz)
      let dates: string[]
      if (date !== undefined) {
        if (from !== undefined || to !== undefined) throw new BadRequestError('give either date or from/to, not both')
        dates = [date]
      } else if (from !== undefined || to !== undefined) {
        if (from === undefined || to === undefined) throw new BadRequestError('a range needs both from and to')
        if (from > to) throw new BadRequestError(`from (${from}) is after to (${to})`)
        const days = daysBetween(from, to) + 1
        if (days > config.BATCH_MAX_RANGE_DAYS) {
          throw new BadRequestError(`range of ${days} days exceeds BATCH_MAX_RANGE_DAYS (${config.BATCH_MAX_RANGE_DAYS})`)
        }
        dates = datesInRange(from, to)
      } else {
        dates = [latest]
      }
      const last = dates[dates.length - 1]!
      if (last > latest) {
        throw new BadRequestError(`${last} has not ended yet in ${tz}: the latest date that can be run is ${latest}`)
      }
      const started = await batch.startMany(dates, 'api')
      if (request.query.wait) {
        const closed = await Promise.all(started.map((s) => s.done))
        return reply.code(200).send({ runs: closed.map(runToJson) })
      }
      return reply.code(202).send({ runs: started.map((s) => runToJson(s.run)) })
    },
  )

  app.get(
    '/batch/runs',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['batch'],
        summary: 'Run history, newest first',
        querystring: ListRunsQuery,
        response: { 200: ListRunsResponse, ...errors },
      },
    },
    async (request) => {
      const { from, to, status, cursor } = request.query
      const limit = request.query.limit ?? 50
      if (from && to && from > to) throw new BadRequestError(`from (${from}) is after to (${to})`)
      const rows = await store.runs.list({
        from,
        to,
        status,
        beforeId: cursor === undefined ? undefined : decodeCursor(cursor),
        limit: limit + 1,
      })
      const page = rows.slice(0, limit)
      return {
        runs: page.map(runToJson),
        next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null,
      }
    },
  )

  app.get(
    '/batch/runs/:id',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['batch'],
        summary: 'One run with its per-client errors',
        params: RunIdParam,
        response: { 200: RunWithErrors, ...errors, 404: ErrorResponse },
      },
    },
    async (request) => {
      const row = await store.runs.get(request.params.id)
      if (!row) throw new NotFoundError(`no run ${request.params.id}`)
      const errors = JSON.parse(row.client_errors) as Array<{ client_org_id: string; error: string }>
      return { ...runToJson(row), errors: errors.map((e) => ({ ...e, error: redactText(e.error) })) }
    },
  )

  app.get(
    '/batch/status',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['batch'],
        summary: 'Scheduler state, runs in flight, last successful date',
        description: 'The next tick as an instant and as wall time in BUSINESS_TIMEZONE; both null while this replica runs no scheduler.',
        response: { 200: StatusResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async () => {
      const next = scheduler.nextRun()
      return {
        scheduler: {
          enabled: scheduler.enabled(),
          cron: config.BATCH_SCHEDULE_CRON,
          timezone: tz,
          next_run_at: next?.at ?? null,
          next_run_local: next?.local ?? null,
          leader: scheduler.isLeader(),
        },
        running: (await batch.running()).map(runToJson),
        last_success_date: await store.runs.lastSuccessDate(),
      }
    },
  )

  app.get(
    '/batch/storage',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['batch'],
        summary: 'Raw rows and bytes by month, oldest raw day, archive files, SQLite size and free pages',
        response: { 200: StorageResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    () => storage.report(),
  )
}
