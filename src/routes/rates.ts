import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { today } from '../clock.js'
import { resolveRange } from '../date-range.js'
import { BadRequestError } from '../errors.js'
import { parseDecimal } from '../money.js'
import type { UsdPlnRate } from '../services.js'
import { ErrorResponse } from '../schemas/common.js'
import { ManualRateBody, RateDateParam, RateRow, RatesQuery, RatesResponse } from '../schemas/rates.js'

function rateToJson(r: UsdPlnRate) {
  return { ...r, rate: Number(r.rate) }
}

const MAX_MANUAL_RATE_DECIMALS = 6

export const rateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, clock, config } = app.services

  app.get(
    '/usage/exchange-rates',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['rates'],
        summary: 'Stored USD/PLN rates per usage date',
        description: 'Each usage date with the rate that prices it, its NBP table and effective date, or `manual`.',
        querystring: RatesQuery,
        response: { 200: RatesResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async (request) => {
      const { from, to } = resolveRange(request.query, today(clock, config.BUSINESS_TIMEZONE))
      return { rates: (await store.rates.list(from, to)).map(rateToJson) }
    },
  )

  app.put(
    '/usage/exchange-rates/:date',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['rates'],
        summary: 'Set a manual USD/PLN rate for a usage date',
        description:
          'A manual rate wins over NBP and is never overwritten by a fetch. Summaries already written keep their ' +
          'old PLN until the date is rerun (POST /batch/run), which reprices it with this rate.',
        params: RateDateParam,
        body: ManualRateBody,
        response: { 200: RateRow, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async (request) => {
      const { date } = request.params
      const latest = today(clock, config.BUSINESS_TIMEZONE)
      if (date > latest) throw new BadRequestError(`${date} is in the future (today is ${latest} in ${config.BUSINESS_TIMEZONE})`)
      const rate = parseDecimal(request.body.rate)
      if (rate.units <= 0n) throw new BadRequestError('rate must be positive')
      if (rate.scale > MAX_MANUAL_RATE_DECIMALS) throw new BadRequestError(`rate has more than ${MAX_MANUAL_RATE_DECIMALS} decimals`)
      if (rate.units > 100n * 10n ** BigInt(rate.scale)) throw new BadRequestError('rate above 100 is no USD/PLN rate')
      const stored = await store.rates.setManual({
        usage_date: date,
        rate: request.body.rate,
        note: request.body.note ?? null,
        fetched_at: new Date(clock.now()).toISOString(),
        policy: config.EXCHANGE_RATE_POLICY,
      })
      request.log.info({ usageDate: date, rate: stored.rate }, 'manual USD/PLN rate set')
      return rateToJson(stored)
    },
  )
}
