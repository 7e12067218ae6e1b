// What the InfluxQL and Flux sources share: auth, version detection, error shapes, line protocol
// writes. Plain HTTP through global fetch, so that 1.x, 2.x and 3.x are spoken the same way.
import { RawStoreUnavailableError } from '../errors.js'
import { redactText, redactUrl } from '../redact.js'
import { usagePointLine } from './line-protocol.js'
import type { IngestResult } from './types.js'
import type { UsageEvent } from '../usage-event.js'

export type FetchFn = typeof fetch

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
    // Messages quote fetch errors, which quote the URL (INFLUXDB_URL may carry credentials).
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

export async function bodyExcerpt(response: Response): Promise<string> {
  try {
    const text = await response.text()
    return text.length > BODY_EXCERPT_CHARS ? `${text.slice(0, BODY_EXCERPT_CHARS)}…` : text
  } catch {
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
  fetchFn: FetchFn = fetch,
  options: { auth?: InfluxAuth; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<InfluxVersion> {
  const pingUrl = joinUrl(url, 'ping', {})
  let response: Response
  try {
    response = await fetchFn(pingUrl, {
      headers: authHeaders(options.auth ?? { kind: 'none' }),
      signal: requestSignal(options.timeoutMs ?? 10_000, options.signal),
    })
  } catch (e) {
    // undici says only "fetch failed"; the cause (ECONNREFUSED, a timeout) and where are what an operator needs.
    const cause = (e as Error).cause instanceof Error ? `: ${((e as Error).cause as Error).message}` : ''
    throw new Error(`${redactUrl(pingUrl)} did not answer (${(e as Error).message}${cause})`, { cause: e })
  }
  let version = response.headers.get('x-influxdb-version') ?? ''
  if (!version && response.headers.get('content-type')?.includes('json')) {
    const body = (await response.json().catch(() => ({}))) as { version?: unknown }
    if (typeof body.version === 'string') version = body.version
  } else {
    await response.body?.cancel()
  }
  if (!response.ok) throw new InfluxQueryError(`InfluxDB /ping answered HTTP ${response.status}`, response.status)
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
  fetch?: FetchFn
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
  const fetchFn = target.fetch ?? fetch
  for (let i = 0; i < lines.length; i += WRITE_BATCH_LINES) {
    const body = lines.slice(i, i + WRITE_BATCH_LINES).join('\n')
    let response: Response
    try {
      response = await fetchFn(url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8', ...authHeaders(target.auth) },
        body,
        signal: requestSignal(target.timeoutMs),
      })
    } catch (e) {
      throw new RawStoreUnavailableError('InfluxDB did not answer the write; nothing of this request was stored, try again', { cause: e })
    }
    if (response.status !== 204) {
      // InfluxDB's own answer goes to the log (as the cause), never into the 503 body.
      const cause = new Error(`InfluxDB write answered HTTP ${response.status}: ${await bodyExcerpt(response)}`)
      throw new RawStoreUnavailableError(`InfluxDB refused the write (HTTP ${response.status}); see the service log`, { cause })
    }
  }
  return { accepted: seen.size, duplicates: events.length - seen.size }
}

/** Milliseconds since a performance.now() reading, to the microsecond, for health details. */
export function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000
}
