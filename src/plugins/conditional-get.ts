// Conditional GET on the read routes (docs/api.md#conditional-requests): a strong ETag on every
// 200, `If-None-Match` answered 304, and answers of the store's summary reads kept in memory and
// served again while the store's write generation (Store.generation) has not moved.
//
// A route opts in with `config.conditional`:
// - `store`: its answer depends only on the store's summary reads, the URL, the caller's scope, the
//   Accept header and today's date. It is cached, keyed by all of those, and an entry is served only
//   while the generation read before that answer was computed is still the store's generation: a
//   write committed since (here or by another process) makes it a miss, never a stale answer.
// - `content`: live answers (today's figures, voids): ETag and 304 from the body, never cached.
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { today } from '../clock.js'
import type { Services } from '../services.js'

export type Conditional = 'store' | 'content'

declare module 'fastify' {
  interface FastifyContextConfig {
    conditional?: Conditional
  }
}

/** Answers larger than this are not kept (a year of a big client in CSV is still far below it). */
const MAX_ENTRY_BYTES = 1024 * 1024
/** The cache holds at most this many bytes of answers; the least recently served go first. */
const MAX_CACHE_BYTES = 32 * 1024 * 1024

const CACHE_CONTROL = 'private, no-cache'
const VARY = 'Accept, Authorization'

interface Entry {
  generation: string
  etag: string
  contentType: string
  body: string
}

interface Pending {
  key: string
  generation: string
}

const pendingByRequest = new WeakMap<FastifyRequest, Pending>()
const servedFromCache = new WeakSet<FastifyRequest>()

/**
 * A strong validator of one representation: the body, its media type, the URL and the caller's
 * scope, so two scopes, two media types or two queries never share one.
 */
export function entityTag(scope: string, contentType: string, url: string, body: string): string {
  const hash = createHash('sha256')
  hash.update(scope).update('\0').update(contentType).update('\0').update(url).update('\0').update(body)
  return `"${hash.digest('base64url').slice(0, 32)}"`
}

/** RFC 9110 §13.1.2: `*` or any listed tag, compared weakly (a `W/` prefix is ignored). */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  for (const part of header.split(',')) {
    const tag = part.trim()
    if (tag === '*' || tag === etag || (tag.startsWith('W/') && tag.slice(2) === etag)) return true
  }
  return false
}

/** A least-recently-served cache of answers, bounded in bytes. */
class AnswerCache {
  private readonly entries = new Map<string, Entry>()
  private bytes = 0

  get(key: string): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry) {
      this.entries.delete(key)
      this.entries.set(key, entry)
    }
    return entry
  }

  set(key: string, entry: Entry): void {
    this.delete(key)
    const size = entry.body.length + key.length
    if (size > MAX_ENTRY_BYTES) return
    this.entries.set(key, entry)
    this.bytes += size
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= MAX_CACHE_BYTES) break
      this.entries.delete(oldest)
      this.bytes -= old.body.length + oldest.length
    }
  }

  private delete(key: string): void {
    const old = this.entries.get(key)
    if (!old) return
    this.entries.delete(key)
    this.bytes -= old.body.length + key.length
  }
}

function validatorHeaders(reply: FastifyReply, etag: string): void {
  reply.header('etag', etag).header('cache-control', CACHE_CONTROL).header('vary', VARY)
}

/** Registers the hooks; routes opt in through `config.conditional`. Call before the routes are registered. */
export function registerConditionalGet(app: FastifyInstance, services: Pick<Services, 'store' | 'clock' | 'config'>): void {
  const { store, clock, config } = services
  const cache = new AnswerCache()

  // After authentication and validation: a cached answer is only ever served to a caller the
  // route admits, and only for a query the route accepted (only 200s are cached).
  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.config.conditional !== 'store' || request.method !== 'GET') return
    // Today's date is part of the key: routes default their range to the current month.
    const key = `${request.authScope}\0${request.headers.accept ?? ''}\0${today(clock, config.BUSINESS_TIMEZONE)}\0${request.url}`
    const generation = await store.generation()
    const hit = cache.get(key)
    if (hit && hit.generation === generation) {
      servedFromCache.add(request)
      validatorHeaders(reply, hit.etag)
      if (noneMatch(request.headers['if-none-match'], hit.etag)) return reply.code(304).send()
      return reply.code(200).type(hit.contentType).send(hit.body)
    }
    pendingByRequest.set(request, { key, generation })
  })

  app.addHook('onSend', async (request, reply, payload) => {
    const conditional = request.routeOptions.config.conditional
    if (!conditional || request.method !== 'GET' || reply.statusCode !== 200 || servedFromCache.has(request)) return payload
    if (typeof payload !== 'string') return payload
    const contentType = String(reply.getHeader('content-type') ?? '')
    const etag = entityTag(request.authScope, contentType, request.url, payload)
    validatorHeaders(reply, etag)
    const pending = pendingByRequest.get(request)
    if (pending) cache.set(pending.key, { generation: pending.generation, etag, contentType, body: payload })
    if (noneMatch(request.headers['if-none-match'], etag)) {
      // No body and no media type: a 304 carries only the validators (RFC 9110 §15.4.5).
      reply.code(304).removeHeader('content-type')
      return null
    }
    return payload
  })
}
