// OpenAPI 3.1 from the route schemas (@fastify/swagger) and Swagger UI at /docs. Security and the
// 401/403 answers are derived from each route's `config.auth`, so the document cannot disagree
// with what the auth hook enforces. Registered before the routes: it collects them as they are added.
import type { FastifyInstance } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Access } from './auth.js'
import { ErrorResponse } from '../schemas/common.js'

export const DOCS_PREFIX = '/docs'

const ROLE_TEXT: Record<Exclude<Access, 'public'>, string> = {
  admin: 'Needs the admin token.',
  read: 'Needs the admin or the read token.',
  ingest: 'Needs the admin or the ingest token.',
  client: "Needs the admin or the read token, or the client token of the client in the path.",
}

/**
 * The method names a client generated from the document gets (Open WebUI's backend, for one):
 * stable, so renaming one is a breaking change for such a client. A route missing here has no
 * operationId, and test/openapi/openapi.test.ts names it.
 */
export const OPERATION_IDS: Readonly<Record<string, string>> = {
  'GET /health/live': 'getLiveness',
  'GET /health/ready': 'getReadiness',
  'GET /health': 'getHealth',
  'GET /metrics': 'getMetrics',
  'POST /batch/run': 'runBatch',
  'GET /batch/runs': 'listRuns',
  'GET /batch/runs/:id': 'getRun',
  'GET /batch/status': 'getBatchStatus',
  'GET /batch/storage': 'getStorage',
  'POST /usage/events': 'ingestEvents',
  'POST /usage/events/void': 'voidEvents',
  'GET /usage/events/voided': 'listVoidedEvents',
  'GET /usage/clients': 'listClients',
  'GET /usage/clients/:id/daily': 'getClientDaily',
  'GET /usage/clients/:id/users': 'getClientUsers',
  'GET /usage/clients/:id/models': 'getClientModels',
  'GET /usage/clients/:id/summary': 'getClientMonthSummary',
  'GET /usage/clients/:id/today': 'getClientToday',
  'GET /usage/exchange-rates': 'listExchangeRates',
  'PUT /usage/exchange-rates/:date': 'setExchangeRate',
  'GET /clients/:id/pricing': 'getClientPricing',
  'PUT /clients/:id/pricing': 'addClientPricing',
}

const TAGS = [
  { name: 'health', description: 'Probes for Kubernetes and humans, and the Prometheus scrape' },
  { name: 'usage', description: 'Raw usage ingest and the summaries Open WebUI reads' },
  { name: 'batch', description: 'Daily consolidation runs: trigger, history, status, raw storage' },
  { name: 'rates', description: 'USD/PLN rates per usage date: the NBP table A rate that priced it, or a manual one' },
  { name: 'pricing', description: 'Per-client markup with effective dates' },
]

type JsonObject = Record<string, unknown>

export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  // Swagger UI's own routes are documentation: public, whatever the default access is.
  app.addHook('onRoute', (route) => {
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) {
      route.config = { ...(route.config as object), auth: 'public' }
    }
  })

  // Filled by `transform`, route by route, before `transformObject` sees the whole document.
  const optionalBodies = new Set<string>()
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'usage-batch',
        version,
        description:
          'Billing-grade daily LLM usage summaries: raw usage in, per-client daily summaries with exact money in USD and PLN ' +
          '(NBP rate) out. Money is JSON numbers with at most 9 decimals; list endpoints also answer CSV with exact decimals.',
        license: { name: 'UNLICENSED: proprietary, no licence granted' },
      },
      servers: [
        // Relative: Swagger UI at /docs (and any reader of /docs/json) calls the service that served it.
        { url: '/', description: 'the service that serves this document' },
        { url: 'http://127.0.0.1:8080', description: 'a local instance on the default HOST and PORT' },
      ],
      tags: TAGS,
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'API_ADMIN_TOKEN, API_READ_TOKEN, API_INGEST_TOKEN or a client token from API_CLIENT_TOKENS',
          },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      const routeConfig = route.config as { auth?: Access; bodyOptional?: boolean } | undefined
      const access: Access = routeConfig?.auth ?? 'admin'
      if (!schema) return { schema, url }
      const s = { ...(schema as JsonObject) }
      const methods = typeof route.method === 'string' ? [route.method] : route.method
      const operationId = OPERATION_IDS[`${methods.join(',')} ${url}`]
      if (operationId) {
        s.operationId = operationId
        if (routeConfig?.bodyOptional) optionalBodies.add(operationId)
      }
      const response = { ...((s.response as JsonObject | undefined) ?? {}) }
      // Answers every route can give besides its own: a request body can be malformed JSON (400),
      // too large (413) or of another media type (415); anything unexpected is a masked 500.
      if (s.body) for (const code of [400, 413, 415]) response[code] ??= ErrorResponse
      response[500] ??= ErrorResponse
      s.response = response
      if (access === 'public') {
        // Explicitly none: without it a reader may assume a document-wide default applies.
        s.security = []
        return { schema: s, url }
      }
      response[401] ??= ErrorResponse
      response[403] ??= ErrorResponse
      // List endpoints answer CSV too (?format=csv or Accept: text/csv).
      const query = s.querystring as { properties?: JsonObject } | undefined
      if (query?.properties?.format && response[200]) {
        const json = response[200] as JsonObject
        response[200] = {
          description: (json.description as string | undefined) ?? 'The rows as JSON, or as CSV on request',
          content: {
            'application/json': { schema: json },
            'text/csv': { schema: { type: 'string', description: 'Header row, one line per row, RFC 4180, UTF-8' } },
          },
        }
      }
      s.response = response
      s.security = [{ bearerAuth: [] }]
      s.description = [s.description, ROLE_TEXT[access]].filter(Boolean).join(' ')
      return { schema: s, url }
    },
    // @fastify/swagger marks every request body required (Fastify validates a missing one as
    // invalid); a route whose hook reads no body as `{}` gets the truth instead.
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject
      const { openapiObject } = document
      for (const methods of Object.values(openapiObject.paths ?? {})) {
        for (const operation of Object.values(methods as Record<string, JsonObject>)) {
          const body = operation.requestBody as JsonObject | undefined
          if (body && optionalBodies.has(operation.operationId as string)) body.required = false
        }
      }
      return openapiObject
    },
  })

  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX })
}
