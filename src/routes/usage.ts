import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { monthBounds, today } from '../clock.js'
import { resolveRange } from '../date-range.js'
import { LiveFiguresUnavailableError, RawStoreUnavailableError } from '../errors.js'
import type { DailyRead, DayCounts } from '../services.js'
import { preferredMediaType } from '../accept.js'
import { CSV_CONTENT_TYPE, toCsv, type CsvValue } from '../csv.js'
import { CLIENT_SUMS, DAILY, MODEL_SUMS, PRICED, TOTALS, USER_MODEL_SUMS, USER_SUMS, sumMeasures, type Measures } from '../measures.js'
import { divRoundHalfEven, nanoToJson, type MoneyFormat } from '../money.js'
import { ErrorResponse } from '../schemas/common.js'
import {
  ClientIdParam,
  ClientsResponse,
  DailyResponse,
  ModelsResponse,
  MonthQuery,
  RangeQuery,
  SummaryResponse,
  TodayQuery,
  TodayResponse,
  UsersResponse,
} from '../schemas/usage.js'

/** How many models the month summary lists. */
export const SUMMARY_TOP_MODELS = 5

/** Totals of listed rows: exact sums of exactly those rows, with the range's day counts. */
function totalsJson(rows: Iterable<Measures>, days: DayCounts, money: MoneyFormat) {
  return TOTALS.toJson({ ...sumMeasures(rows), ...days }, money)
}

/** Day counts of daily rows: each row is one day. */
function dailyDayCounts(rows: DailyRead[]): DayCounts {
  let missing = 0
  for (const r of rows) if (r.markup_cost_nano_pln === null) missing += 1
  return { days_with_usage: rows.length, days_missing_pln: missing }
}

const OFFERED_TYPES = ['application/json', 'text/csv'] as const

/**
 * `?format=csv` wins; otherwise the Accept header decides, q-values included (`text/csv;q=0,
 * application/json` is JSON). JSON when the header is absent or accepts neither.
 */
export function wantsCsv(request: FastifyRequest): boolean {
  const format = (request.query as { format?: 'json' | 'csv' }).format
  if (format) return format === 'csv'
  return preferredMediaType(request.headers.accept, OFFERED_TYPES) === 'text/csv'
}

function sendCsv(reply: FastifyReply, header: readonly string[], rows: Iterable<readonly CsvValue[]>) {
  return reply.code(200).type(CSV_CONTENT_TYPE).send(toCsv(header, rows))
}

const readErrors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse }
const csvDescription = ' Answers CSV (header row, one line per row, exact decimals) for `?format=csv` or `Accept: text/csv`.'

export const usageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, clock, config, today: todayView } = app.services
  const summaries = store.summaries
  const tz = config.BUSINESS_TIMEZONE

  app.get(
    '/usage/clients',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['usage'],
        summary: 'Every client with usage, with totals',
        description:
          'One row per client with usage over from/to (inclusive; default the current month so far), summed from the daily client rows.' +
          csvDescription,
        querystring: RangeQuery,
        response: { 200: ClientsResponse, ...readErrors },
      },
    },
    async (request, reply) => {
      const { from, to } = resolveRange(request.query, today(clock, tz))
      const clients = await summaries.clientsOverview(from, to)
      if (wantsCsv(request)) return sendCsv(reply, CLIENT_SUMS.header, clients.map(CLIENT_SUMS.toCsv))
      const money = request.query.money ?? 'number'
      return {
        from,
        to,
        clients: clients.map((c) => CLIENT_SUMS.toJson(c, money)),
        totals: totalsJson(clients, await summaries.dayCounts('client_daily_usage', null, from, to), money),
      }
    },
  )

  app.get(
    '/usage/clients/:id/daily',
    {
      config: { auth: 'client' },
      schema: {
        tags: ['usage'],
        summary: "A client's daily summaries",
        description:
          'One row per day with usage over from/to (inclusive; default the current month so far), with totals. ' +
          'Each row carries the markup and USD/PLN rate that priced it.' +
          csvDescription,
        params: ClientIdParam,
        querystring: RangeQuery,
        response: { 200: DailyResponse, ...readErrors },
      },
    },
    async (request, reply) => {
      const { from, to } = resolveRange(request.query, today(clock, tz))
      const rows = await summaries.clientDaily(request.params.id, from, to)
      if (wantsCsv(request)) return sendCsv(reply, DAILY.header, rows.map(DAILY.toCsv))
      const money = request.query.money ?? 'number'
      return {
        client_org_id: request.params.id,
        from,
        to,
        days: rows.map((r) => DAILY.toJson(r, money)),
        totals: totalsJson(rows, dailyDayCounts(rows), money),
      }
    },
  )

  app.get(
    '/usage/clients/:id/users',
    {
      config: { auth: 'client' },
      schema: {
        tags: ['usage'],
        summary: "A client's usage per user, with a per-model breakdown",
        description:
          'Summed from the per-user-and-model daily rows over from/to. In CSV, one line per (user, model).' + csvDescription,
        params: ClientIdParam,
        querystring: RangeQuery,
        response: { 200: UsersResponse, ...readErrors },
      },
    },
    async (request, reply) => {
      const { from, to } = resolveRange(request.query, today(clock, tz))
      const id = request.params.id
      const users = await summaries.clientUserSums(id, from, to)
      if (wantsCsv(request)) {
        return sendCsv(
          reply,
          USER_MODEL_SUMS.header,
          users.flatMap((u) => u.models.map((m) => USER_MODEL_SUMS.toCsv({ external_user: u.external_user, ...m }))),
        )
      }
      const money = request.query.money ?? 'number'
      return {
        client_org_id: id,
        from,
        to,
        users: users.map((u) => ({ ...USER_SUMS.toJson(u, money), models: u.models.map((m) => MODEL_SUMS.toJson(m, money)) })),
        totals: totalsJson(users, await summaries.dayCounts('client_user_daily_usage', id, from, to), money),
      }
    },
  )

  app.get(
    '/usage/clients/:id/models',
    {
      config: { auth: 'client' },
      schema: {
        tags: ['usage'],
        summary: "A client's usage per model",
        description: 'Summed from the per-model daily rows over from/to, most tokens first.' + csvDescription,
        params: ClientIdParam,
        querystring: RangeQuery,
        response: { 200: ModelsResponse, ...readErrors },
      },
    },
    async (request, reply) => {
      const { from, to } = resolveRange(request.query, today(clock, tz))
      const id = request.params.id
      const models = await summaries.clientModelSums(id, from, to)
      if (wantsCsv(request)) return sendCsv(reply, MODEL_SUMS.header, models.map(MODEL_SUMS.toCsv))
      const money = request.query.money ?? 'number'
      return {
        client_org_id: id,
        from,
        to,
        models: models.map((m) => MODEL_SUMS.toJson(m, money)),
        totals: totalsJson(models, await summaries.dayCounts('client_model_daily_usage', id, from, to), money),
      }
    },
  )

  app.get(
    '/usage/clients/:id/summary',
    {
      config: { auth: 'client' },
      schema: {
        tags: ['usage'],
        summary: "A client's month: totals, daily breakdown, busiest and costliest day, top models",
        description:
          "For `month` (YYYY-MM, default the current month). Each day's PLN is at that day's stored rate. " +
          'Averages are over days with usage; ties for busiest/highest-cost day go to the earliest date; ' +
          'unique_users counts distinct users over the month.',
        params: ClientIdParam,
        querystring: MonthQuery,
        response: { 200: SummaryResponse, ...readErrors },
      },
    },
    async (request) => {
      const month = request.query.month ?? today(clock, tz).slice(0, 7)
      const { from, to } = monthBounds(month)
      const id = request.params.id
      const rows = await summaries.clientDaily(id, from, to)
      const money = request.query.money ?? 'number'
      const sums = sumMeasures(rows)
      let busiest: DailyRead | undefined
      let costliest: DailyRead | undefined
      for (const r of rows) {
        // Rows come oldest first; strict comparisons keep the earliest day on a tie. A number and a
        // bigint compare by value.
        if (!busiest || r.total_tokens > busiest.total_tokens) busiest = r
        if (!costliest || r.markup_cost_nano_usd > costliest.markup_cost_nano_usd) costliest = r
      }
      const days = BigInt(rows.length)
      const average = (total: bigint | number) => nanoToJson(rows.length ? divRoundHalfEven(BigInt(total), days) : 0, money)
      return {
        client_org_id: id,
        month,
        from,
        to,
        totals: TOTALS.toJson({ ...sums, ...dailyDayCounts(rows) }, money),
        days: rows.map((r) => DAILY.toJson(r, money)),
        average_daily_tokens: rows.length ? Math.round((sums.total_tokens / rows.length) * 100) / 100 : 0,
        average_daily_cost_usd: average(sums.markup_cost_nano_usd),
        average_daily_cost_pln: sums.markup_cost_nano_pln === null ? null : average(sums.markup_cost_nano_pln),
        busiest_day: busiest ? { usage_date: busiest.usage_date, total_tokens: busiest.total_tokens } : null,
        highest_cost_day: costliest
          ? { usage_date: costliest.usage_date, markup_cost_usd: nanoToJson(costliest.markup_cost_nano_usd, money) }
          : null,
        unique_users: await summaries.distinctUsers(id, from, to),
        top_models: (await summaries.clientModelSums(id, from, to))
          .slice(0, SUMMARY_TOP_MODELS)
          .map((m) => MODEL_SUMS.toJson(m, money)),
      }
    },
  )

  app.get(
    '/usage/clients/:id/today',
    {
      config: { auth: 'client' },
      schema: {
        tags: ['usage'],
        summary: "A client's usage today so far (live, unbilled)",
        description:
          'Aggregated live from the raw store from the start of today (business time zone) until now, priced with the markup ' +
          `in force today; PLN only when today's rate is already stored. Cached for ${todayView.ttlMs / 1000} s per client. Not a bill: the batch ` +
          'writes the day once it is over.',
        params: ClientIdParam,
        querystring: TodayQuery,
        response: { 200: TodayResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => {
      let live
      try {
        live = await todayView.forClient(request.params.id)
      } catch (e) {
        // The store said why it cannot answer yet (InfluxDB dialect still being detected): pass that on.
        if (e instanceof RawStoreUnavailableError) throw e
        // Never "no usage" on a failed query: the caller is told the live figures are unavailable.
        request.log.error({ err: e, client: request.params.id }, 'live aggregation failed')
        throw new LiveFiguresUnavailableError()
      }
      const c = live.day.client
      const money = request.query.money ?? 'number'
      return {
        client_org_id: request.params.id,
        usage_date: live.usage_date,
        live: true as const,
        billed: false as const,
        note: 'live figures for today so far; not billed until the batch has processed the day',
        window_start: new Date(live.window_start_ms).toISOString(),
        as_of: new Date(live.as_of_ms).toISOString(),
        ...PRICED.toJson(c, money),
        primary_model: c.primary_model === '' ? null : c.primary_model,
        unique_users: c.unique_users,
        models: live.day.models
          .slice()
          .sort((a, b) => b.total_tokens - a.total_tokens || (a.model < b.model ? -1 : 1))
          .map((m) => MODEL_SUMS.toJson(m, money)),
      }
    },
  )
}
