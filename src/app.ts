// buildApp(config, services) → a ready-to-listen Fastify instance over the services of the
// composition root (services.ts). Registers plugins and routes; never listens, builds no service.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { fastifySchedule } from '@fastify/schedule'
import { Ajv, type Options as AjvOptions } from 'ajv'
import * as ajvFormatsModule from 'ajv-formats'
import type { Config } from './config.js'
import { isValidDate, isValidMonth } from './clock.js'
import { useFastStringLength } from './schemas/string-length.js'
import type { Services } from './services.js'
import { registerAuth } from './plugins/auth.js'
import { registerConditionalGet } from './plugins/conditional-get.js'
import { registerJsonBodyParser } from './plugins/json-body.js'
import { healthRoutes } from './routes/health.js'
import { batchRoutes } from './routes/batch.js'
import { eventRoutes, voidRoutes } from './routes/events.js'
import { usageRoutes } from './routes/usage.js'
import { rateRoutes } from './routes/rates.js'
import { pricingRoutes } from './routes/pricing.js'
import { errorBody, logRefusal } from './plugins/errors.js'
import { registerOpenApi } from './plugins/openapi.js'
import { metricsRoutes } from './routes/metrics.js'
import { UNMATCHED_ROUTE } from './metrics.js'
import { ProbeAwareLogController } from './plugins/request-logging.js'

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
  const ajv = useFastStringLength(new Ajv({ removeAdditional: false, useDefaults: true, allErrors: true, strict: false, ...options }))
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

/** The server options of the app (the read benchmark's bare route takes the same). */
export function serverOptions(log: Services['log']): FastifyServerOptions {
  return {
    // The caller's x-request-id is read in requestIdFrom, which also vets it.
    requestIdHeader: false,
    genReqId: requestIdFrom,
    // Probes and scrapes arrive every few seconds: their lines go to debug unless they fail.
    logController: new ProbeAwareLogController(),
    loggerInstance: log,
  }
}

export async function buildApp(config: Config, services: Services): Promise<App> {
  const { metrics } = services
  const app = Fastify(serverOptions(services.log)).withTypeProvider<TypeBoxTypeProvider>()
  // Every body this API takes is JSON. Fastify also parses text/plain by default, which turned a
  // text body into a 400 about its shape; without that parser it is the 415 it should be.
  app.removeContentTypeParser('text/plain')
  registerJsonBodyParser(app)

  // Bodies are validated strictly (no type coercion: "5" is not a token count); path and query
  // strings are text by nature, so they are coerced to the declared types.
  const bodyAjv = makeAjv({ coerceTypes: false })
  const textAjv = makeAjv({ coerceTypes: 'array' })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema))

  app.decorate('services', services)

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  // Labelled by route pattern (/batch/runs/:id), never the raw URL, so label cardinality stays bounded.
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequest(request.method, request.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime)
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const body = errorBody(error)
    logRefusal(request.log, error, body)
    return reply.code(body.statusCode).type('application/json').send(body)
  })
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url}` }),
  )

  // app.scheduler (toad-scheduler): the server puts the daily CronJob on it; its onClose hook stops the job.
  await app.register(fastifySchedule)
  registerAuth(app, config)
  registerConditionalGet(app, services)
  await registerOpenApi(app, APP_VERSION)
  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(batchRoutes)
  await app.register(eventRoutes)
  await app.register(voidRoutes)
  await app.register(usageRoutes)
  await app.register(rateRoutes)
  await app.register(pricingRoutes)

  return app
}
