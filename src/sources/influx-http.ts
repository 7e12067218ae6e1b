// What the InfluxQL and Flux sources share: auth, version detection, error shapes, line protocol
// writes, and the HTTP they go through. Plain HTTP, so that 1.x, 2.x and 3.x are spoken the same
// way, on node:http (nodeHttpRequest) rather than global fetch: a batch day in per-client mode makes
// about 500 queries, and undici's garbage per request took the batch process over its memory budget
// (docs/operations.md#memory). Bodies are read as Node streams for the same reason: a web stream
// wrapped around node:http costs about half of what fetch does again.
import http from 'node:http'
import https from 'node:https'
import { urlToHttpOptions } from 'node:url'
import { RawStoreUnavailableError } from '../errors.js'
import { redactText, redactUrl } from '../redact.js'
import { usagePointLine } from './line-protocol.js'
import type { IngestResult } from './types.js'
import type { UsageEvent } from '../usage-event.js'

export type FetchFn = typeof fetch

export interface HttpRequestInit {
  method?: 'GET' | 'POST'
  headers: Record<string, string>
  body?: string
  /** Aborts the request, and the reading of its body, whenever it fires. */
  signal: AbortSignal
}

/** An HTTP answer whose body has not been read yet. */
export interface HttpAnswer {
  status: number
  ok: boolean
  header(name: string): string | null
  /** The body as it arrives, to be iterated once; null when the answer has none (204, 304). */
  body: AsyncIterable<Uint8Array> | null
  text(): Promise<string>
  /**
   * Lets go of the answer: its connection goes back to the pool when the body is all in, else it
   * is closed. Every answer must end read or discarded, or its keep-alive connection is held.
   */
  discard(): Promise<void> | void
}

/** How the sources send HTTP: nodeHttpRequest in production, fromFetch(…) for an injected fetch. */
export type HttpRequestFn = (url: string, init: HttpRequestInit) => Promise<HttpAnswer>

/**
 * Idle keep-alive connections are closed after this long: sooner than Node's own servers close
 * theirs (5 s), so a request rarely goes out on a connection the server is closing (a server that
 * announces a shorter Keep-Alive timeout is followed by the agent itself).
 */
const IDLE_SOCKET_TIMEOUT_MS = 4_000

let agents: { http: http.Agent; https: https.Agent } | undefined

// Created on first use, not at import. An idle pooled socket is unref'd by the agent itself, so
// a finishing CLI process is never held open by one.
function agentFor(protocol: string): http.Agent {
  agents ??= {
    http: new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS }),
    https: new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS }),
  }
  return protocol === 'https:' ? agents.https : agents.http
}

/**
 * HTTP on node:http and node:https, with keep-alive. A GET whose reused connection turns out to
 * have been closed by the server (ECONNRESET before any answer) is sent once more on a new one; a
 * POST never is. No Accept-Encoding is sent, so answers come uncompressed.
 */
export const nodeHttpRequest: HttpRequestFn = (url, init) => sendOverNodeHttp(url, init, true)

function sendOverNodeHttp(url: string, init: HttpRequestInit, mayResend: boolean): Promise<HttpAnswer> {
  return new Promise<HttpAnswer>((resolve, reject) => {
    const { signal } = init
    if (signal.aborted) return reject(signal.reason)
    let target: URL
    try {
      target = new URL(url)
    } catch (e) {
      return reject(e)
    }
    // As fetch does: credentials go as a header (authHeaders), never silently from a URL.
    if (target.username || target.password) return reject(new TypeError(`a URL that includes credentials is refused: ${redactUrl(url)}`))
    const client = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : undefined
    if (!client) return reject(new TypeError(`not an http or https URL: ${redactUrl(url)}`))
    const method = init.method ?? 'GET'
    const headers = { ...init.headers }
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body, 'utf8'))
    const req = client.request({ ...urlToHttpOptions(target), auth: undefined, method, headers, agent: agentFor(target.protocol) })
    let res: http.IncomingMessage | undefined
    const onAbort = () => {
      // Destroying either closes the connection: an answer being read ends with the signal's reason.
      req.destroy(signal.reason)
      res?.destroy(signal.reason)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    const forgetSignal = () => signal.removeEventListener('abort', onAbort)
    req.on('error', (e: NodeJS.ErrnoException) => {
      // Once the answer has begun, its reader sees the failure through the body instead.
      if (res) return
      forgetSignal()
      if (mayResend && method === 'GET' && req.reusedSocket && e.code === 'ECONNRESET' && !signal.aborted) {
        resolve(sendOverNodeHttp(url, init, false))
        return
      }
      reject(e)
    })
    req.on('response', (answer) => {
      res = answer
      answer.once('close', forgetSignal)
      resolve(nodeAnswer(answer))
    })
    req.end(init.body)
  })
}

function nodeAnswer(res: http.IncomingMessage): HttpAnswer {
  const status = res.statusCode ?? 0
  const body = status === 204 || status === 304 ? null : res
  return {
    status,
    ok: status >= 200 && status <= 299,
    header(name) {
      const value = res.headers[name.toLowerCase()]
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
    },
    body,
    async text() {
      if (!body) return ''
      const parts: Buffer[] = []
      for await (const part of body) parts.push(part as Buffer)
      return Buffer.concat(parts).toString('utf8')
    },
    discard() {
      if (res.readableEnded || res.destroyed) return
      // Not all in: only closing the connection stops the server sending the rest.
      if (!res.complete) {
        res.destroy()
        return
      }
      // All in: reading what is left ends the answer, and its end gives the connection back to the
      // pool, so a request sent once this resolves can reuse it.
      const ended = new Promise<void>((resolve) => {
        res.once('end', resolve)
        res.once('close', resolve)
      })
      res.resume()
      return ended
    },
  }
}

/** An injected fetch (tests, fakes) behind the same interface. */
export function fromFetch(fetchFn: FetchFn): HttpRequestFn {
  return async (url, init) => {
    const response = await fetchFn(url, { method: init.method, headers: init.headers, body: init.body, signal: init.signal })
    return {
      status: response.status,
      ok: response.ok,
      header: (name) => response.headers.get(name),
      body: response.body as unknown as AsyncIterable<Uint8Array> | null,
      text: () => response.text(),
      async discard() {
        // A body being iterated is locked, and one read to its end is used: either is let go already.
        if (response.body && !response.bodyUsed && !response.body.locked) await response.body.cancel().catch(() => undefined)
      },
    }
  }
}

/** The transport a source uses: the injected fetch when there is one, else node:http. */
export function httpRequestFor(fetchFn: FetchFn | undefined): HttpRequestFn {
  return fetchFn ? fromFetch(fetchFn) : nodeHttpRequest
}

/**
 * A failed request as text: its message and, when the message does not say it, its cause's
 * (undici says only "fetch failed" and keeps ECONNREFUSED or a timeout in the cause; node:http's
 * errors say it themselves, e.g. "connect ECONNREFUSED 127.0.0.1:8086").
 */
export function requestFailureText(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const cause = e.cause instanceof Error && !e.message.includes(e.cause.message) ? `: ${e.cause.message}` : ''
  return `${e.message}${cause}`
}

/**
 * How to authenticate. 1.x: username/password (sent as HTTP basic auth, so the password never
 * lands in a URL or an access log). 2.x: `Authorization: Token …`. 3.x: `Authorization: Bearer …`.
 */
export type InfluxAuth =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'token'; token: string; scheme: 'Token' | 'Bearer' }

export type QueryLanguage = 'influxql' | 'flux'

/** A query failed (HTTP error, or an error reported inside the answer). Never means "no usage". */
export class InfluxQueryError extends Error {
  override name = 'InfluxQueryError'
  constructor(
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    // Messages quote transport errors, which may quote the URL (INFLUXDB_URL may carry credentials).
    super(redactText(message), options)
  }
}

const BODY_EXCERPT_CHARS = 300

export function authHeaders(auth: InfluxAuth): Record<string, string> {
  switch (auth.kind) {
    case 'none':
      return {}
    case 'basic':
      return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}` }
    case 'token':
      return { authorization: `${auth.scheme} ${auth.token}` }
  }
}

/** A signal that fires on the caller's abort or after timeoutMs, whichever comes first. */
export function requestSignal(timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs)
  return signal ? AbortSignal.any([signal, timeout]) : timeout
}

export async function bodyExcerpt(answer: HttpAnswer): Promise<string> {
  try {
    const text = await answer.text()
    return text.length > BODY_EXCERPT_CHARS ? `${text.slice(0, BODY_EXCERPT_CHARS)}…` : text
  } catch {
    await answer.discard()
    return '(body unreadable)'
  }
}

export function joinUrl(base: string, path: string, params: Record<string, string | undefined>): string {
  const url = new URL(path, base.endsWith('/') ? base : `${base}/`)
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v)
  return url.toString()
}

export interface InfluxVersion {
  /** As the server reports it, e.g. "1.6.7~rc0", "v2.7.11", "3.0.1". */
  version: string
  major: number
  queryLanguage: QueryLanguage
}

/** The dialect a server speaks best: 2.x → Flux; 1.x and 3.x (no Flux) → InfluxQL. */
export function queryLanguageFor(major: number): QueryLanguage {
  return major === 2 ? 'flux' : 'influxql'
}

/**
 * Reads the server version from `GET /ping` (header X-Influxdb-Version; 3.x also answers it in a
 * JSON body). Throws when the server cannot be reached or does not say.
 */
export async function detectInfluxVersion(
  url: string,
  request: HttpRequestFn = nodeHttpRequest,
  options: { auth?: InfluxAuth; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<InfluxVersion> {
  const pingUrl = joinUrl(url, 'ping', {})
  let answer: HttpAnswer
  try {
    answer = await request(pingUrl, {
      headers: authHeaders(options.auth ?? { kind: 'none' }),
      signal: requestSignal(options.timeoutMs ?? 10_000, options.signal),
    })
  } catch (e) {
    // The cause (ECONNREFUSED, a timeout) and where are what an operator needs.
    throw new Error(`${redactUrl(pingUrl)} did not answer (${requestFailureText(e)})`, { cause: e })
  }
  let version = answer.header('x-influxdb-version') ?? ''
  if (!version && answer.header('content-type')?.includes('json')) {
    const body = (await answer
      .text()
      .then((text) => JSON.parse(text) as unknown)
      .catch(() => undefined)) as { version?: unknown } | null | undefined
    if (typeof body?.version === 'string') version = body.version
  }
  await answer.discard()
  if (!answer.ok) throw new InfluxQueryError(`InfluxDB /ping answered HTTP ${answer.status}`, answer.status)
  const m = /^v?(\d+)\./.exec(version.trim())
  if (!m) throw new InfluxQueryError(`InfluxDB /ping gave no recognisable version (X-Influxdb-Version: ${JSON.stringify(version)})`)
  const major = Number(m[1])
  return { version, major, queryLanguage: queryLanguageFor(major) }
}

export interface WriteTarget {
  url: string
  auth: InfluxAuth
  /** 1.x `/write?db=…`; 2.x/3.x `/api/v2/write?org=…&bucket=…`. */
  api: { kind: 'v1'; database: string; retentionPolicy?: string } | { kind: 'v2'; org?: string; bucket: string }
  measurement: string
  timeoutMs: number
  /** nodeHttpRequest when not given. */
  request?: HttpRequestFn
}

/** Lines per request: InfluxDB recommends batches of about 5,000 points. */
const WRITE_BATCH_LINES = 5_000

/**
 * Writes events as points and resolves only after the server acknowledged every batch (204).
 * InfluxDB cannot tell a duplicate from a new point (a retry silently overwrites its earlier
 * self), so `duplicates` counts only request_ids repeated within this call; the first wins.
 */
export async function writeUsagePoints(target: WriteTarget, events: UsageEvent[]): Promise<IngestResult> {
  const seen = new Set<string>()
  const lines: string[] = []
  // Encode everything before sending anything: a bad value refuses the whole call, nothing written.
  for (const e of events) {
    if (seen.has(e.request_id)) continue
    seen.add(e.request_id)
    lines.push(usagePointLine(target.measurement, e))
  }
  const url =
    target.api.kind === 'v1'
      ? joinUrl(target.url, 'write', { db: target.api.database, rp: target.api.retentionPolicy, precision: 'ns' })
      : joinUrl(target.url, 'api/v2/write', { org: target.api.org, bucket: target.api.bucket, precision: 'ns' })
  const request = target.request ?? nodeHttpRequest
  for (let i = 0; i < lines.length; i += WRITE_BATCH_LINES) {
    const body = lines.slice(i, i + WRITE_BATCH_LINES).join('\n')
    let answer: HttpAnswer
    try {
      answer = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8', ...authHeaders(target.auth) },
        body,
        signal: requestSignal(target.timeoutMs),
      })
    } catch (e) {
      throw new RawStoreUnavailableError('InfluxDB did not answer the write; nothing of this request was stored, try again', { cause: e })
    }
    if (answer.status !== 204) {
      // InfluxDB's own answer goes to the log (as the cause), never into the 503 body.
      const cause = new Error(`InfluxDB write answered HTTP ${answer.status}: ${await bodyExcerpt(answer)}`)
      throw new RawStoreUnavailableError(`InfluxDB refused the write (HTTP ${answer.status}); see the service log`, { cause })
    }
    await answer.discard()
  }
  return { accepted: seen.size, duplicates: events.length - seen.size }
}

/** Milliseconds since a performance.now() reading, to the microsecond, for health details. */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000
}
