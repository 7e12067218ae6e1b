// buildApp(config, deps) → a ready-to-listen Fastify instance. Registers plugins and routes; never listens.
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions } from 'ajv'
import * as ajvFormatsModule from 'ajv-formats'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import { systemClock, type Clock } from './clock.js'
import type { Db } from './db/open.js'
import { createBatchService, type BatchService } from './batch/service.js'
import { noRateProvider, type RateProvider } from './rates/types.js'
import type { UsageSource } from './sources/types.js'
import { registerAuth } from './plugins/auth.js'
import { healthRoutes } from './routes/health.js'
import { batchRoutes } from './routes/batch.js'
import { eventRoutes } from './routes/events.js'
import { usageRoutes } from './routes/usage.js'
import { rateRoutes } from './routes/rates.js'
import { pricingRoutes } from './routes/pricing.js'
import { errorBody } from './plugins/errors.js'
import { registerOpenApi } from './plugins/openapi.js'

export interface AppDeps {
  db: Db
  source: UsageSource
  rates?: RateProvider
  clock?: Clock
  /** A pino logger; omitted → logging off (tests). */
  logger?: Logger
  /** Built by the caller when shared with a scheduler or CLI; otherwise made here. */
  batch?: BatchService
}

export interface Services {
  config: Config
  db: Db
  source: UsageSource
  rates: RateProvider
  clock: Clock
  batch: BatchService
  /** Present while the in-process scheduler runs. */
  scheduler?: SchedulerHandle
}

export interface SchedulerHandle {
  /** The next tick as an instant (ISO, UTC) and as local wall time in the business zone. */
  nextRun(): { at: string; local: string } | null
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services
  }
}

export type App = FastifyInstance

/** The package version, shown in the OpenAPI document. */
export const APP_VERSION = '0.1.0'

const addFormats = ((ajvFormatsModule as unknown as { default: { default?: unknown } }).default.default ??
  (ajvFormatsModule as unknown as { default: unknown }).default) as (ajv: Ajv) => Ajv

function makeAjv(options: AjvOptions): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: true, strict: false, ...options })
  addFormats(ajv)
  return ajv
}

export async function buildApp(config: Config, deps: AppDeps): Promise<App> {
  const clock = deps.clock ?? systemClock
  const rates = deps.rates ?? noRateProvider
  const options: FastifyServerOptions = {
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
  }
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>()

  // Bodies are validated strictly (no type coercion: "5" is not a token count); path and query
  // strings are text by nature, so they are coerced to the declared types.
  const bodyAjv = makeAjv({ coerceTypes: false })
  const textAjv = makeAjv({ coerceTypes: 'array' })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))

  const batch =
    deps.batch ??
    createBatchService({
      db: deps.db,
      source: deps.source,
      rates,
      clock,
      log: app.log as Logger,
      timeZone: config.BUSINESS_TIMEZONE,
      defaultMarkupRate: config.defaultMarkupRate,
    })
  app.decorate('services', { config, db: deps.db, source: deps.source, rates, clock, batch })

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const body = errorBody(error)
    if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ statusCode: body.statusCode, reason: body.message }, 'request refused')
    return reply.code(body.statusCode).type('application/json').send(body)
  })
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url}` }),
  )

  registerAuth(app, config)
  await registerOpenApi(app, APP_VERSION)
  await app.register(healthRoutes)
  await app.register(batchRoutes)
  await app.register(eventRoutes)
  await app.register(usageRoutes)
  await app.register(rateRoutes)
  await app.register(pricingRoutes)

  app.addHook('onClose', async () => {
    await batch.stop(0)
  })
  return app
}
