// buildApp(config, deps) → a ready-to-listen Fastify instance. Registers plugins and routes; never listens.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Ajv, type Options as AjvOptions } from 'ajv'
import * as ajvFormatsModule from 'ajv-formats'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import { isValidDate, isValidMonth, systemClock, type Clock } from './clock.js'
import type { Db } from './db/open.js'
import { createBatchService, type BatchService } from './batch/service.js'
import { createTodayView, type TodayView } from './batch/today.js'
import { noRateProvider, type RateProvider } from './rates/types.js'
import type { UsageSource } from './sources/types.js'
import { registerAuth } from './plugins/auth.js'
import { healthRoutes } from './routes/health.js'
import { batchRoutes } from './routes/batch.js'
import { eventRoutes, voidRoutes } from './routes/events.js'
import { usageRoutes } from './routes/usage.js'
import { rateRoutes } from './routes/rates.js'
import { pricingRoutes } from './routes/pricing.js'
import { errorBody } from './plugins/errors.js'
import { registerOpenApi } from './plugins/openapi.js'
import { metricsRoutes } from './routes/metrics.js'
import { createMetrics, databaseLedger, UNMATCHED_ROUTE, type Metrics } from './metrics.js'
import { influxdbCheck, type StoreStatus } from './sources/check.js'
import { ProbeAwareLogController } from './plugins/request-logging.js'

export interface AppDeps {
  db: Db
  source: UsageSource
  rates?: RateProvider
  clock?: Clock
  /** A pino logger; omitted → logging off (tests). */
  logger?: Logger
  /** Built by the caller when shared with a scheduler or CLI; otherwise made here. */
  batch?: BatchService
  /** Shared with the batch service, NBP and InfluxDB modules by the runtime; otherwise made here. */
  metrics?: Metrics
  /** The cached InfluxDB check shared by /health and /metrics; made here when not given. */
  influxCheck?: () => Promise<StoreStatus>
}

export interface Services {
  config: Config
  db: Db
  source: UsageSource
  rates: RateProvider
  clock: Clock
  batch: BatchService
  /** Prometheus metrics of this instance; NBP and InfluxDB modules report through it. */
  metrics: Metrics
  /** InfluxDB's state, cached for a few seconds (`disabled` in the embedded mode). */
  influxCheck: () => Promise<StoreStatus>
  /** Present while the in-process scheduler runs. */
  scheduler?: SchedulerHandle
  /** Today's live figures (short cache); a void clears it, so no live read counts a voided record. */
  today: TodayView
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
  // Every date of every route goes through the one parser (clock.ts): ajv-formats' `date` admits
  // years 0000-0099, which the date arithmetic cannot serve.
  ajv.addFormat('date', { type: 'string', validate: isValidDate })
  ajv.addFormat('month', { type: 'string', validate: isValidMonth })
  return ajv
}

/** Caller-chosen request ids are logged and echoed: keep sane ones, replace the rest (too long, odd characters). */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

function requestIdFrom(request: IncomingMessage): string {
  const given = request.headers['x-request-id']
  return typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : randomUUID()
}

export async function buildApp(config: Config, deps: AppDeps): Promise<App> {
  const clock = deps.clock ?? systemClock
  const rates = deps.rates ?? noRateProvider
  const influxCheck = deps.influxCheck ?? influxdbCheck(deps.source, clock, config.influxdbFirst)
  const metrics =
    deps.metrics ??
    createMetrics({
      ledger: databaseLedger(deps.db, config, clock),
      ...(config.influxdbFirst ? { influxdbUp: async () => (await influxCheck()).status === 'up' } : {}),
    })
  const options: FastifyServerOptions = {
    // The caller's x-request-id is read in requestIdFrom, which also vets it.
    requestIdHeader: false,
    genReqId: requestIdFrom,
    // Probes and scrapes arrive every few seconds: their lines go to debug unless they fail.
    logController: new ProbeAwareLogController(),
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
  }
  const app = Fastify(options).withTypeProvider<TypeBoxTypeProvider>()
  // Every body this API takes is JSON. Fastify also parses text/plain by default, which turned a
  // text body into a 400 about its shape; without that parser it is the 415 it should be.
  app.removeContentTypeParser('text/plain')

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
  const today = createTodayView({ db: deps.db, source: deps.source, clock, timeZone: config.BUSINESS_TIMEZONE, defaultMarkupRate: config.defaultMarkupRate })
  app.decorate('services', { config, db: deps.db, source: deps.source, rates, clock, batch, metrics, influxCheck, today })

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  // Labelled by route pattern (/batch/runs/:id), never the raw URL, so label cardinality stays bounded.
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequest(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime)
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const body = errorBody(error)
    // 503: a dependency is unavailable (InfluxDB down or not detected yet, shutting down); its message
    // says which. Not a bug: no stack, and not one per request at error level during an outage.
    if (body.statusCode === 503) request.log.warn({ statusCode: 503, reason: body.message }, 'request refused: unavailable')
    else if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ statusCode: body.statusCode, reason: body.message }, 'request refused')
    return reply.code(body.statusCode).type('application/json').send(body)
  })
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url}` }),
  )

  registerAuth(app, config)
  await registerOpenApi(app, APP_VERSION)
  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(batchRoutes)
  await app.register(eventRoutes)
  await app.register(voidRoutes)
  await app.register(usageRoutes)
  await app.register(rateRoutes)
  await app.register(pricingRoutes)

  app.addHook('onClose', async () => {
    await batch.stop(0)
  })
  return app
}
