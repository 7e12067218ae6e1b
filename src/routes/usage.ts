import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { addDays, daysBetween, monthBounds, today } from '../clock.js'
import { clientDailyRows, type DailyRead, type MeasureRead } from '../db/summaries.js'
import {
  addSums,
  clientModelSums,
  clientsOverview,
  clientUserSums,
  dayCounts,
  distinctUsers,
  type DayCounts,
  type MeasureSums,
} from '../db/summary-reads.js'
import { preferredMediaType } from '../accept.js'
import { CSV_CONTENT_TYPE, toCsv, type CsvValue } from '../csv.js'
import { divRoundHalfEven, nanoToDecimalText, nanoToNumber } from '../money.js'
import { ErrorResponse } from '../schemas/common.js'
import {
  ClientIdParam,
  ClientsResponse,
  DailyResponse,
  ModelsResponse,
  MonthQuery,
  RangeQuery,
  SummaryResponse,
  TodayResponse,
  UsersResponse,
} from '../schemas/usage.js'
import { BadRequestError } from './batch.js'
import createError from '@fastify/error'
import { StoreUnavailableError } from '../sources/influx-http.js'

const RawStoreUnavailableError = createError(
  'FST_RAW_STORE_UNAVAILABLE',
  'the raw usage store did not answer; live figures for today are unavailable (see the service log)',
  503,
)

/** The longest from/to range a read accepts (SPEC §7). */
export const MAX_READ_RANGE_DAYS = 366
/** How many models the month summary lists. */
export const SUMMARY_TOP_MODELS = 5

type MeasureRow = MeasureRead

export function pricedToJson(row: MeasureRow) {
  return {
    total_tokens: row.total_tokens,
    input_tokens: row.input_tokens,
    output_tokens: row.output_tokens,
    total_requests: row.total_requests,
    raw_cost_usd: nanoToNumber(row.raw_cost_nano_usd),
    markup_cost_usd: nanoToNumber(row.markup_cost_nano_usd),
    markup_cost_pln: row.markup_cost_nano_pln === null ? null : nanoToNumber(row.markup_cost_nano_pln),
    markup_rate: Number(row.markup_rate),
    exchange_rate_usd_pln: row.exchange_rate_usd_pln === null ? null : Number(row.exchange_rate_usd_pln),
    exchange_rate_date: row.exchange_rate_date,
  }
}

/** Exact totals of rows: nano sums exact, PLN null as soon as one row lacks it. */
export function totalsOf(rows: MeasureRow[]) {
  let missingPln = 0
  const t = { total_tokens: 0, input_tokens: 0, output_tokens: 0, total_requests: 0 }
  // Stored amounts are non-negative safe integers: summed as doubles, every partial sum is at most
  // the final one, so a safe final sum means every step was exact. Otherwise sum again in BigInt.
  let rawN = 0
  let markupN = 0
  let plnN = 0
  let nonNegative = true
  for (const r of rows) {
    t.total_tokens += r.total_tokens
    t.input_tokens += r.input_tokens
    t.output_tokens += r.output_tokens
    t.total_requests += r.total_requests
    rawN += r.raw_cost_nano_usd
    markupN += r.markup_cost_nano_usd
    if (r.raw_cost_nano_usd < 0 || r.markup_cost_nano_usd < 0) nonNegative = false
    if (r.markup_cost_nano_pln === null) missingPln += 1
    else {
      plnN += r.markup_cost_nano_pln
      if (r.markup_cost_nano_pln < 0) nonNegative = false
    }
  }
  let raw: number | bigint = rawN
  let markup: number | bigint = markupN
  let pln: number | bigint = plnN
  if (!nonNegative || !Number.isSafeInteger(rawN) || !Number.isSafeInteger(markupN) || !Number.isSafeInteger(plnN)) {
    raw = 0n
    markup = 0n
    pln = 0n
    for (const r of rows) {
      raw += BigInt(r.raw_cost_nano_usd)
      markup += BigInt(r.markup_cost_nano_usd)
      if (r.markup_cost_nano_pln !== null) pln += BigInt(r.markup_cost_nano_pln)
    }
  }
  return {
    ...t,
    raw_cost_usd: nanoToNumber(raw),
    markup_cost_usd: nanoToNumber(markup),
    markup_cost_pln: missingPln > 0 ? null : nanoToNumber(pln),
    days_missing_pln: missingPln,
  }
}

/** Summed measures (several days) as JSON. */
export function sumsToJson(s: MeasureSums) {
  return {
    total_tokens: s.total_tokens,
    input_tokens: s.input_tokens,
    output_tokens: s.output_tokens,
    total_requests: s.total_requests,
    raw_cost_usd: nanoToNumber(s.raw_cost_nano_usd),
    markup_cost_usd: nanoToNumber(s.markup_cost_nano_usd),
    markup_cost_pln: s.markup_cost_nano_pln === null ? null : nanoToNumber(s.markup_cost_nano_pln),
  }
}

/** Totals of listed rows: exact sums of exactly those rows, with the range's day counts. */
function totalsOfSums(rows: MeasureSums[], days: DayCounts) {
  return { ...sumsToJson(addSums(rows)), ...days }
}

/** from/to defaults (the current month so far) and limits, in the business time zone. */
export function resolveRange(query: { from?: string; to?: string }, todayDate: string): { from: string; to: string } {
  const from = query.from ?? (query.to ?? todayDate).slice(0, 8) + '01'
  // By day count, not text: the longest range from a far-future `from` ends past 9999-12-31.
  const to =
    query.to ??
    (query.from && daysBetween(query.from, todayDate) > MAX_READ_RANGE_DAYS - 1 ? addDays(query.from, MAX_READ_RANGE_DAYS - 1) : todayDate)
  if (from > to) throw new BadRequestError(`from (${from}) is after to (${to})`)
  const days = daysBetween(from, to) + 1
  if (days > MAX_READ_RANGE_DAYS) throw new BadRequestError(`range of ${days} days exceeds ${MAX_READ_RANGE_DAYS} days`)
  return { from, to }
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

const SUM_HEADER = [
  'total_tokens',
  'input_tokens',
  'output_tokens',
  'total_requests',
  'raw_cost_usd',
  'markup_cost_usd',
  'markup_cost_pln',
] as const

function sumsCsv(s: MeasureSums): CsvValue[] {
  return [
    s.total_tokens,
    s.input_tokens,
    s.output_tokens,
    s.total_requests,
    nanoToDecimalText(s.raw_cost_nano_usd),
    nanoToDecimalText(s.markup_cost_nano_usd),
    s.markup_cost_nano_pln === null ? null : nanoToDecimalText(s.markup_cost_nano_pln),
  ]
}

const DAILY_HEADER = [
  'usage_date',
  ...SUM_HEADER,
  'markup_rate',
  'exchange_rate_usd_pln',
  'exchange_rate_date',
  'primary_model',
  'unique_users',
] as const

function dailyCsv(r: DailyRead): CsvValue[] {
  return [
    r.usage_date,
    r.total_tokens,
    r.input_tokens,
    r.output_tokens,
    r.total_requests,
    nanoToDecimalText(r.raw_cost_nano_usd),
    nanoToDecimalText(r.markup_cost_nano_usd),
    r.markup_cost_nano_pln === null ? null : nanoToDecimalText(r.markup_cost_nano_pln),
    r.markup_rate,
    r.exchange_rate_usd_pln,
    r.exchange_rate_date,
    r.primary_model,
    r.unique_users,
  ]
}

function dailyToJson(r: DailyRead) {
  // pricedToJson's fields spelled out: this runs for every row of the dashboards' hottest read.
  return {
    usage_date: r.usage_date,
    total_tokens: r.total_tokens,
    input_tokens: r.input_tokens,
    output_tokens: r.output_tokens,
    total_requests: r.total_requests,
    raw_cost_usd: nanoToNumber(r.raw_cost_nano_usd),
    markup_cost_usd: nanoToNumber(r.markup_cost_nano_usd),
    markup_cost_pln: r.markup_cost_nano_pln === null ? null : nanoToNumber(r.markup_cost_nano_pln),
    markup_rate: Number(r.markup_rate),
    exchange_rate_usd_pln: r.exchange_rate_usd_pln === null ? null : Number(r.exchange_rate_usd_pln),
    exchange_rate_date: r.exchange_rate_date,
    primary_model: r.primary_model,
    unique_users: r.unique_users,
  }
}

const readErrors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse }
const csvDescription = ' Answers CSV (header row, one line per row, exact decimals) for `?format=csv` or `Accept: text/csv`.'

export const usageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config, source } = app.services
  const tz = config.BUSINESS_TIMEZONE
  const todayView = app.services.today

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
      const clients = clientsOverview(db, from, to)
      if (wantsCsv(request)) {
        return sendCsv(
          reply,
          ['client_org_id', ...SUM_HEADER, 'days_with_usage'],
          clients.map((c) => [c.client_org_id, ...sumsCsv(c), c.days_with_usage]),
        )
      }
      return {
        from,
        to,
        clients: clients.map((c) => ({ client_org_id: c.client_org_id, ...sumsToJson(c), days_with_usage: c.days_with_usage })),
        totals: totalsOfSums(clients, dayCounts(db, 'client_daily_usage', null, from, to)),
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
      const rows = clientDailyRows(db, request.params.id, from, to)
      if (wantsCsv(request)) return sendCsv(reply, DAILY_HEADER, rows.map(dailyCsv))
      return {
        client_org_id: request.params.id,
        from,
        to,
        days: rows.map(dailyToJson),
        totals: { ...totalsOf(rows), days_with_usage: rows.length },
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
      const users = clientUserSums(db, id, from, to)
      if (wantsCsv(request)) {
        return sendCsv(
          reply,
          ['external_user', 'model', ...SUM_HEADER],
          users.flatMap((u) => u.models.map((m) => [u.external_user, m.model, ...sumsCsv(m)])),
        )
      }
      return {
        client_org_id: id,
        from,
        to,
        users: users.map((u) => ({
          external_user: u.external_user,
          ...sumsToJson(u),
          models: u.models.map((m) => ({ model: m.model, ...sumsToJson(m) })),
        })),
        totals: totalsOfSums(users, dayCounts(db, 'client_user_daily_usage', id, from, to)),
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
      const models = clientModelSums(db, id, from, to)
      if (wantsCsv(request)) return sendCsv(reply, ['model', ...SUM_HEADER], models.map((m) => [m.model, ...sumsCsv(m)]))
      return {
        client_org_id: id,
        from,
        to,
        models: models.map((m) => ({ model: m.model, ...sumsToJson(m) })),
        totals: totalsOfSums(models, dayCounts(db, 'client_model_daily_usage', id, from, to)),
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
      const rows = clientDailyRows(db, id, from, to)
      const totals = { ...totalsOf(rows), days_with_usage: rows.length }
      let busiest: DailyRead | undefined
      let costliest: DailyRead | undefined
      let markup = 0n
      let pln: bigint | null = 0n
      for (const r of rows) {
        // Rows come oldest first; strict comparisons keep the earliest day on a tie.
        if (!busiest || r.total_tokens > busiest.total_tokens) busiest = r
        if (!costliest || r.markup_cost_nano_usd > costliest.markup_cost_nano_usd) costliest = r
        markup += BigInt(r.markup_cost_nano_usd)
        pln = pln === null || r.markup_cost_nano_pln === null ? null : pln + BigInt(r.markup_cost_nano_pln)
      }
      const days = BigInt(rows.length)
      return {
        client_org_id: id,
        month,
        from,
        to,
        totals,
        days: rows.map(dailyToJson),
        average_daily_tokens: rows.length ? Math.round((totals.total_tokens / rows.length) * 100) / 100 : 0,
        average_daily_cost_usd: rows.length ? nanoToNumber(divRoundHalfEven(markup, days)) : 0,
        average_daily_cost_pln: pln === null ? null : rows.length ? nanoToNumber(divRoundHalfEven(pln, days)) : 0,
        busiest_day: busiest ? { usage_date: busiest.usage_date, total_tokens: busiest.total_tokens } : null,
        highest_cost_day: costliest
          ? { usage_date: costliest.usage_date, markup_cost_usd: nanoToNumber(costliest.markup_cost_nano_usd) }
          : null,
        unique_users: distinctUsers(db, id, from, to),
        top_models: clientModelSums(db, id, from, to)
          .slice(0, SUMMARY_TOP_MODELS)
          .map((m) => ({ model: m.model, ...sumsToJson(m) })),
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
          "in force today; PLN only when today's rate is already stored. Cached for 30 s per client. Not a bill: the batch " +
          'writes the day once it is over.',
        params: ClientIdParam,
        response: { 200: TodayResponse, 401: ErrorResponse, 403: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => {
      let live
      try {
        live = await todayView.forClient(request.params.id)
      } catch (e) {
        // The store said why it cannot answer yet (InfluxDB dialect still being detected): pass that on.
        if (e instanceof StoreUnavailableError) throw e
        // Never "no usage" on a failed query: the caller is told the live figures are unavailable.
        request.log.error({ err: e, client: request.params.id }, 'live aggregation failed')
        throw new RawStoreUnavailableError()
      }
      const c = live.day.client
      return {
        client_org_id: request.params.id,
        usage_date: live.usage_date,
        live: true as const,
        billed: false as const,
        note: 'live figures for today so far; not billed until the batch has processed the day',
        window_start: new Date(live.window_start_ms).toISOString(),
        as_of: new Date(live.as_of_ms).toISOString(),
        ...sumsToJson(c),
        markup_rate: Number(c.markup_rate),
        exchange_rate_usd_pln: c.exchange_rate_usd_pln === null ? null : Number(c.exchange_rate_usd_pln),
        exchange_rate_date: c.exchange_rate_date,
        primary_model: c.primary_model === '' ? null : c.primary_model,
        unique_users: c.unique_users,
        models: live.day.models
          .slice()
          .sort((a, b) => b.total_tokens - a.total_tokens || (a.model < b.model ? -1 : 1))
          .map((m) => ({ model: m.model, ...sumsToJson(m) })),
      }
    },
  )
}
