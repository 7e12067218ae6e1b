// Bearer-token roles (docs/api.md#authentication). Each route names its access in `config.auth`;
// this hook enforces it.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { ForbiddenError, UnauthorizedError } from '../errors.js'

/**
 * public: no token. admin: the admin token only. read: admin or read. ingest: admin or ingest.
 * client: admin, read, or the token of the client named in the `id` path parameter.
 */
export type Access = 'public' | 'admin' | 'read' | 'ingest' | 'client'

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: Access
  }
}

type Principal = { role: 'admin' | 'read' | 'ingest' } | { role: 'client'; clientOrgId: string }

interface TokenEntry {
  digest: Buffer
  principal: Principal
}

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest()

export function parseClientTokens(text: string | undefined): Array<{ clientOrgId: string; token: string }> {
  if (!text) return []
  return text.split(',').map((pair) => {
    const [clientOrgId, token] = pair.split('=').map((s) => s.trim()) as [string, string]
    return { clientOrgId, token }
  })
}

export function authEnabled(config: Config): boolean {
  if (config.AUTH_DISABLED) return false
  return Boolean(config.API_ADMIN_TOKEN || config.API_READ_TOKEN || config.API_INGEST_TOKEN || config.API_CLIENT_TOKENS)
}

export function registerAuth(app: FastifyInstance, config: Config): void {
  if (!authEnabled(config)) return
  const entries: TokenEntry[] = []
  if (config.API_ADMIN_TOKEN) entries.push({ digest: digest(config.API_ADMIN_TOKEN), principal: { role: 'admin' } })
  if (config.API_READ_TOKEN) entries.push({ digest: digest(config.API_READ_TOKEN), principal: { role: 'read' } })
  if (config.API_INGEST_TOKEN) entries.push({ digest: digest(config.API_INGEST_TOKEN), principal: { role: 'ingest' } })
  for (const { clientOrgId, token } of parseClientTokens(config.API_CLIENT_TOKENS)) {
    entries.push({ digest: digest(token), principal: { role: 'client', clientOrgId } })
  }

  /** Compares against every configured token, in constant time per comparison, without early exit. */
  function identify(request: FastifyRequest): Principal | undefined {
    const header = request.headers.authorization
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    if (!m) return undefined
    const presented = digest(m[1]!)
    let found: Principal | undefined
    for (const entry of entries) {
      if (timingSafeEqual(presented, entry.digest) && !found) found = entry.principal
    }
    return found
  }

  app.addHook('onRequest', async (request) => {
    // Unmatched URLs get the plain 404; every matched route without an explicit access is admin-only.
    if (request.is404) return
    const access = request.routeOptions.config.auth ?? 'admin'
    if (access === 'public') return
    const principal = identify(request)
    if (!principal) throw new UnauthorizedError()
    if (principal.role === 'admin') return
    const action = `${request.method} ${request.routeOptions.url ?? request.url}`
    if (access === 'read' && principal.role === 'read') return
    if (access === 'ingest' && principal.role === 'ingest') return
    if (access === 'client') {
      if (principal.role === 'read') return
      const params = request.params as { id?: string } | undefined
      if (principal.role === 'client' && params?.id === principal.clientOrgId) return
    }
    throw new ForbiddenError(action)
  })
}
