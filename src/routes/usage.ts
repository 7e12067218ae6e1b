import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { addDays, daysBetween, today } from '../clock.js'
import type { ClientDailyRow } from '../db/schema.js'
import { clientDailyRows } from '../db/summaries.js'
import { nanoToNumber } from '../money.js'
import { ErrorResponse } from '../schemas/common.js'
import { ClientIdParam, DailyResponse, RangeQuery } from '../schemas/usage.js'
import { BadRequestError } from './batch.js'

/** The longest from/to range a read accepts (SPEC §7). */
export const MAX_READ_RANGE_DAYS = 366

type MeasureRow = Pick<
  ClientDailyRow,
  | 'total_tokens'
  | 'input_tokens'
  | 'output_tokens'
  | 'total_requests'
  | 'raw_cost_nano_usd'
  | 'markup_cost_nano_usd'
  | 'markup_cost_nano_pln'
  | 'markup_rate'
  | 'exchange_rate_usd_pln'
  | 'exchange_rate_date'
>

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

/** Exact totals of rows: nano sums in bigint, PLN null as soon as one row lacks it. */
export function totalsOf(rows: MeasureRow[]) {
  let raw = 0n
  let markup = 0n
  let pln = 0n
  let missingPln = 0
  const t = { total_tokens: 0, input_tokens: 0, output_tokens: 0, total_requests: 0 }
  for (const r of rows) {
    t.total_tokens += r.total_tokens
    t.input_tokens += r.input_tokens
    t.output_tokens += r.output_tokens
    t.total_requests += r.total_requests
    raw += BigInt(r.raw_cost_nano_usd)
    markup += BigInt(r.markup_cost_nano_usd)
    if (r.markup_cost_nano_pln === null) missingPln += 1
    else pln += BigInt(r.markup_cost_nano_pln)
  }
  return {
    ...t,
    raw_cost_usd: nanoToNumber(raw),
    markup_cost_usd: nanoToNumber(markup),
    markup_cost_pln: missingPln > 0 ? null : nanoToNumber(pln),
    days_missing_pln: missingPln,
  }
}

/** from/to defaults (the current month so far) and limits, in the business time zone. */
export function resolveRange(query: { from?: string; to?: string }, todayDate: string): { from: string; to: string } {
  const from = query.from ?? (query.to ?? todayDate).slice(0, 8) + '01'
  const to = query.to ?? (query.from ? minDate(addDays(query.from, MAX_READ_RANGE_DAYS - 1), todayDate) : todayDate)
  if (from > to) throw new BadRequestError(`from (${from}) is after to (${to})`)
  const days = daysBetween(from, to) + 1
  if (days > MAX_READ_RANGE_DAYS) throw new BadRequestError(`range of ${days} days exceeds ${MAX_READ_RANGE_DAYS} days`)
  return { from, to }
}

function minDate(a: string, b: string): string {
  return a < b ? a : b
}

export const usageRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config } = app.services

  app.get(
    '/usage/clients/:id/daily',
    {
      config: { auth: 'client' },
      schema: {
        tags: ['usage'],
        summary: "A client's daily summaries",
        description: 'One row per day with usage over from/to (inclusive; default the current month so far), with totals.',
        params: ClientIdParam,
        querystring: RangeQuery,
        response: { 200: DailyResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async (request) => {
      const { from, to } = resolveRange(request.query, today(clock, config.BUSINESS_TIMEZONE))
      const rows = clientDailyRows(db, request.params.id, from, to)
      return {
        client_org_id: request.params.id,
        from,
        to,
        days: rows.map((r) => ({
          usage_date: r.usage_date,
          ...pricedToJson(r),
          primary_model: r.primary_model,
          unique_users: r.unique_users,
        })),
        totals: { ...totalsOf(rows), days_with_usage: rows.length },
      }
    },
  )
}
