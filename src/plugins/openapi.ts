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

type JsonObject = Record<string, unknown>

export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  // Swagger UI's own routes are documentation: public, whatever the default access is.
  app.addHook('onRoute', (route) => {
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) {
      route.config = { ...(route.config as object), auth: 'public' }
    }
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'usage-batch',
        version,
        description:
          'Billing-grade daily LLM usage summaries: raw usage in, per-client daily summaries with exact money in USD and PLN ' +
          '(NBP rate) out. Money is JSON numbers with at most 9 decimals; list endpoints also answer CSV with exact decimals.',
      },
      tags: [
        { name: 'health', description: 'Probes for Kubernetes and humans' },
        { name: 'usage', description: 'Raw usage ingest and the summaries Open WebUI reads' },
        { name: 'batch', description: 'Daily consolidation runs: trigger, history, status' },
        { name: 'pricing', description: 'Per-client markup with effective dates' },
      ],
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
      const access: Access = (route.config as { auth?: Access } | undefined)?.auth ?? 'admin'
      if (!schema) return { schema, url }
      const s = { ...(schema as JsonObject) }
      const response = { ...((s.response as JsonObject | undefined) ?? {}) }
      // Answers every route can give besides its own: a request body can be malformed JSON (400),
      // too large (413) or of another media type (415); anything unexpected is a masked 500.
      if (s.body) for (const code of [400, 413, 415]) response[code] ??= ErrorResponse
      response[500] ??= ErrorResponse
      s.response = response
      if (access === 'public') return { schema: s, url }
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
  })

  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX })
}
