import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { today } from '../clock.js'
import { BadRequestError, ConflictError } from '../errors.js'
import { DecimalError, parseDecimal, formatDecimal } from '../money.js'
import type { ClientPricingRow } from '../services.js'
import { ClientIdParam, ErrorResponse } from '../schemas/common.js'
import { PricingBody, PricingCreated, PricingResponse } from '../schemas/pricing.js'

/** The markup bounds of a client entry, inclusive (a markup below 1 would sell under cost). */
const MIN_MARKUP_UNITS = 1n
const MAX_MARKUP_UNITS = 10n

function entryToJson(row: ClientPricingRow) {
  return { effective_from: row.effective_from, markup_rate: Number(row.markup_rate), note: row.note, created_at: row.created_at }
}

/** Exact decimal text of a markup within [1, 10]; anything else is the caller's mistake. */
function validMarkup(input: string | number): string {
  let d
  try {
    d = parseDecimal(input)
  } catch (e) {
    if (e instanceof DecimalError) throw new BadRequestError(`markup_rate: ${e.message}`)
    throw e
  }
  const scale = 10n ** BigInt(d.scale)
  if (d.units < MIN_MARKUP_UNITS * scale || d.units > MAX_MARKUP_UNITS * scale) {
    throw new BadRequestError(`markup_rate must be between 1 and 10 (got ${formatDecimal(d)})`)
  }
  return formatDecimal(d)
}

export const pricingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, config, clock } = app.services

  app.get(
    '/clients/:id/pricing',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['pricing'],
        summary: "A client's markup history",
        description:
          'Entries oldest first. A day is priced with the latest entry effective on or before it, or with the default markup ' +
          'before the first entry. Entries are never changed: a new price is a new entry.',
        params: ClientIdParam,
        response: { 200: PricingResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async (request) => {
      const id = request.params.id
      return {
        client_org_id: id,
        default_markup_rate: Number(config.defaultMarkupRate),
        current_markup_rate: Number(await store.pricing.inForce(id, today(clock, config.BUSINESS_TIMEZONE), config.defaultMarkupRate)),
        history: (await store.pricing.history(id)).map(entryToJson),
      }
    },
  )

  app.put(
    '/clients/:id/pricing',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['pricing'],
        summary: 'Append a markup entry for a client',
        description:
          'Appends `{markup_rate, effective_from}` (1 ≤ markup_rate ≤ 10, exact decimal). Days already summarised keep their ' +
          'price until they are rerun; a rerun of a day on or after effective_from applies the new markup, so an entry in the ' +
          'past is retroactive only through reruns. A second entry for the same effective_from is refused with 409.',
        params: ClientIdParam,
        body: PricingBody,
        response: {
          201: PricingCreated,
          400: ErrorResponse,
          401: ErrorResponse,
          403: ErrorResponse,
          409: ErrorResponse,
          415: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const markup = validMarkup(request.body.markup_rate)
      const row = await store.pricing.append({
        client_org_id: id,
        effective_from: request.body.effective_from,
        markup_rate: markup,
        note: request.body.note ?? null,
        created_at: new Date(clock.now()).toISOString(),
      })
      if (!row) throw new ConflictError(`${id} already has a pricing entry effective from ${request.body.effective_from}`)
      request.log.info({ client: id, effectiveFrom: row.effective_from, markupRate: row.markup_rate }, 'client pricing appended')
      return reply.code(201).send({ client_org_id: id, entry: entryToJson(row) })
    },
  )
}
