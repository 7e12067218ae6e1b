// InfluxQL over plain HTTP (`GET /query`): InfluxDB 1.x, 2.x through its v1-compatible API
// (db = bucket) and 3.x Core/Enterprise, which have no Flux.
import { addMeasures } from '../measures.js'
import { toNano } from '../money.js'
import {
  InfluxQueryError,
  authHeaders,
  bodyExcerpt,
  detectInfluxVersion,
  elapsedMs,
  httpRequestFor,
  joinUrl,
  requestFailureText,
  requestSignal,
  writeUsagePoints,
  type FetchFn,
  type HttpAnswer,
  type InfluxAuth,
  type WriteTarget,
} from './influx-http.js'
import type { AggregateOptions, AggregateRow, ExternalDeletes, IngestResult, SourceHealth, UsageSource } from './types.js'
import type { UsageEvent } from '../usage-event.js'

export interface InfluxQLSourceOptions {
  url: string
  /** 1.x database, or the 2.x bucket (its v1 mapping), or the 3.x database. */
  database: string
  measurement: string
  auth: InfluxAuth
  /** Where ingest writes: 1.x `/write`; 2.x/3.x `/api/v2/write` (org is 2.x only). */
  writeApi: { kind: 'v1' } | { kind: 'v2'; org?: string }
  timeoutMs: number
  /** Replaces node:http (tests inject fakes and faults through it). */
  fetch?: FetchFn
}

/** InfluxQL identifier: double-quoted; backslash, quote and line breaks escaped. */
export function quoteIdentifier(name: string): string {
  return `"${escapeQuoted(name, '"')}"`
}

/** InfluxQL string literal: single-quoted; backslash, quote and line breaks escaped. */
export function quoteString(value: string): string {
  return `'${escapeQuoted(value, "'")}'`
}

// The InfluxQL scanner knows \\, \", \', \n; a raw newline ends a string with "bad string".
function escapeQuoted(text: string, quote: '"' | "'"): string {
  let out = ''
  for (const c of text) {
    if (c === '\\' || c === quote) out += `\\${c}`
    else if (c === '\n') out += '\\n'
    else out += c
  }
  return out
}

const GROUP_TAGS = ['client_org_id', 'external_user', 'model'] as const
const SUM_FIELDS = ['input_tokens', 'output_tokens', 'total_tokens', 'cost_usd'] as const

/**
 * One statement for a window: sums and a count per (client, user, model). Only those three tags
 * are grouped on, so points of the earlier system carrying request_id or api_key_hash tags fall
 * into the same groups. The window's UTC bounds are explicit, so no tz() or time() grouping is
 * needed and DST cannot shift a day.
 */
export function aggregateStatement(measurement: string, startMs: number, endMs: number, clientOrgId?: string): string {
  const selects = SUM_FIELDS.map((f) => `sum(${quoteIdentifier(f)}) AS ${quoteIdentifier(f)}`)
  // input_tokens is a required field of every record, old or new: counting it counts records.
  selects.push(`count(${quoteIdentifier('input_tokens')}) AS "records"`)
  let where = `time >= ${quoteString(new Date(startMs).toISOString())} AND time < ${quoteString(new Date(endMs).toISOString())}`
  if (clientOrgId !== undefined) where += ` AND ${quoteIdentifier('client_org_id')} = ${quoteString(clientOrgId)}`
  return `SELECT ${selects.join(', ')} FROM ${quoteIdentifier(measurement)} WHERE ${where} GROUP BY ${GROUP_TAGS.map(quoteIdentifier).join(', ')}`
}

interface Series {
  name?: string
  tags?: Record<string, string>
  columns?: string[]
  values?: unknown[][]
}
interface StatementResult {
  statement_id?: number
  series?: Series[]
  error?: string
}
interface QueryChunk {
  results?: StatementResult[]
  error?: string
}

/**
 * Parses a chunked /query answer as it arrives: one JSON document per line. Reports every error
 * the server puts inside the answer (top-level or per statement, often with HTTP 200). The body is
 * read as it comes (node:http gives Buffers); a body cut short throws from the iteration itself.
 */
async function* readChunks(body: AsyncIterable<Uint8Array>): AsyncGenerator<QueryChunk> {
  const decoder = new TextDecoder()
  let pending = ''
  for await (const piece of body) {
    pending += decoder.decode(piece, { stream: true })
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim()
      pending = pending.slice(nl + 1)
      if (line) yield parseChunk(line)
    }
  }
  pending += decoder.decode()
  if (pending.trim()) yield parseChunk(pending.trim())
}

function parseChunk(line: string): QueryChunk {
  let chunk: QueryChunk
  try {
    chunk = JSON.parse(line) as QueryChunk
  } catch (e) {
    throw new InfluxQueryError(`InfluxDB answered something that is not JSON: ${line.slice(0, 200)}`, undefined, { cause: e })
  }
  if (chunk.error) throw new InfluxQueryError(`InfluxDB query failed: ${chunk.error}`)
  for (const r of chunk.results ?? []) {
    if (r.error) throw new InfluxQueryError(`InfluxDB query failed: ${r.error}`)
  }
  return chunk
}

function numberAt(row: unknown[], index: number, what: string): number {
  const v = index < 0 ? null : row[index]
  if (v === null || v === undefined) return 0
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InfluxQueryError(`InfluxDB returned a non-numeric ${what}: ${JSON.stringify(v)}`)
  return v
}

function integerAt(row: unknown[], index: number, what: string): number {
  const v = numberAt(row, index, what)
  if (!Number.isSafeInteger(v)) throw new InfluxQueryError(`InfluxDB returned a non-integer or unsafe ${what}: ${v}`)
  return v
}

function seriesRows(series: Series): AggregateRow[] {
  const columns = series.columns ?? []
  const at = (name: string) => columns.indexOf(name)
  const tags = series.tags ?? {}
  const out: AggregateRow[] = []
  for (const row of series.values ?? []) {
    const cost = numberAt(row, at('cost_usd'), 'cost_usd')
    out.push({
      client_org_id: tags.client_org_id ?? '',
      external_user: tags.external_user ?? '',
      model: tags.model ?? '',
      input_tokens: integerAt(row, at('input_tokens'), 'input_tokens'),
      output_tokens: integerAt(row, at('output_tokens'), 'output_tokens'),
      total_tokens: integerAt(row, at('total_tokens'), 'total_tokens'),
      total_requests: integerAt(row, at('records'), 'records'),
      // The server summed floats: round that sum once, through its shortest round-trip text.
      raw_cost_nano_usd: toNano(cost),
    })
  }
  return out
}

/**
 * Streams rows, merging those whose external_user is missing into the 'unknown' user: points
 * without the tag and points tagged 'unknown' are one group for billing. Only those rows are
 * held back until the end; everything else is passed on as it arrives.
 */
export async function* mergeUnknownUsers(rows: AsyncIterable<AggregateRow>): AsyncGenerator<AggregateRow> {
  const held = new Map<string, AggregateRow>()
  for await (const row of rows) {
    if (row.external_user !== '' && row.external_user !== 'unknown') {
      yield row
      continue
    }
    const key = JSON.stringify([row.client_org_id, row.model])
    const prior = held.get(key)
    if (!prior) {
      held.set(key, { ...row, external_user: 'unknown' })
      continue
    }
    addMeasures(prior, row)
  }
  yield* held.values()
}

/**
 * Clients with series in the window's shards. InfluxDB 1.x answers meta queries per shard, so a
 * client seen anywhere in a shard overlapping the window is listed even without points that day:
 * a superset, fine for driving per-client queries (an extra client just yields no rows).
 */
export function listClientsStatement(measurement: string, startMs: number, endMs: number): string {
  return (
    `SHOW TAG VALUES FROM ${quoteIdentifier(measurement)} WITH KEY = ${quoteIdentifier('client_org_id')}` +
    ` WHERE time >= ${quoteString(new Date(startMs).toISOString())} AND time < ${quoteString(new Date(endMs).toISOString())}`
  )
}

/** Request ids per lookup statement: keeps the query text (a URL parameter) a few kilobytes. */
const LOOKUP_IDS_PER_STATEMENT = 100

/**
 * The points of some request ids, over all time (a request id carries no date): their tags and
 * exact timestamps, which identify a point (measurement + tag set + time). request_id is a string
 * field, as this service writes it.
 */
export function findPointsStatement(measurement: string, requestIds: readonly string[]): string {
  const columns = ['request_id', ...GROUP_TAGS].map(quoteIdentifier).join(', ')
  const where = requestIds.map((id) => `${quoteIdentifier('request_id')} = ${quoteString(id)}`).join(' OR ')
  return `SELECT ${columns} FROM ${quoteIdentifier(measurement)} WHERE ${where}`
}

/** The point's stored tags and time, as the lookup answers them (a missing tag is null). */
export interface StoredPoint {
  request_id: string
  time: string
  tags: Record<(typeof GROUP_TAGS)[number], string | null>
}

/**
 * Deletes exactly one point: its three tags (a missing tag as '', which InfluxQL matches to series
 * without it) and its exact time. InfluxQL DELETE takes tags and time only, never fields.
 */
export function deleteStatement(measurement: string, point: StoredPoint): string {
  const tags = GROUP_TAGS.map((t) => `${quoteIdentifier(t)} = ${quoteString(point.tags[t] ?? '')}`)
  return `DELETE FROM ${quoteIdentifier(measurement)} WHERE ${tags.join(' AND ')} AND time = ${quoteString(point.time)}`
}

export interface InfluxQLSource extends UsageSource {
  /** Client ids to aggregate one by one (see listClientsStatement); sorted, distinct. */
  listClients(window: { startMs: number; endMs: number }, signal?: AbortSignal): Promise<string[]>
  /**
   * Runs one InfluxQL statement and yields its series, streamed. Times come as epoch ms, or as RFC
   * 3339 text with every nanosecond when `epoch` is null. For tests and tools.
   */
  query(statement: string, signal?: AbortSignal, epoch?: 'ms' | null): AsyncGenerator<Series>
}

export function createInfluxQLSource(options: InfluxQLSourceOptions): InfluxQLSource {
  const request = httpRequestFor(options.fetch)
  let lastError: string | null = null

  const writeTarget: WriteTarget = {
    url: options.url,
    auth: options.auth,
    api:
      options.writeApi.kind === 'v1'
        ? { kind: 'v1', database: options.database }
        : { kind: 'v2', org: options.writeApi.org, bucket: options.database },
    measurement: options.measurement,
    timeoutMs: options.timeoutMs,
    request,
  }

  async function* query(statement: string, signal?: AbortSignal, epoch: 'ms' | null = 'ms'): AsyncGenerator<Series> {
    const url = joinUrl(options.url, 'query', { db: options.database, q: statement, epoch: epoch ?? undefined, chunked: 'true' })
    let answer: HttpAnswer
    try {
      answer = await request(url, { headers: { accept: 'application/json', ...authHeaders(options.auth) }, signal: requestSignal(options.timeoutMs, signal) })
    } catch (e) {
      lastError = requestFailureText(e)
      throw new InfluxQueryError(`InfluxDB query failed: ${lastError}`, undefined, { cause: e })
    }
    try {
      if (!answer.ok || !answer.body) {
        const excerpt = await bodyExcerpt(answer)
        lastError = `HTTP ${answer.status}`
        throw new InfluxQueryError(`InfluxDB query answered HTTP ${answer.status}: ${excerpt}`, answer.status)
      }
      try {
        for await (const chunk of readChunks(answer.body)) {
          for (const result of chunk.results ?? []) yield* result.series ?? []
        }
      } catch (e) {
        lastError = (e as Error).message
        throw e instanceof InfluxQueryError ? e : new InfluxQueryError(`InfluxDB query failed: ${(e as Error).message}`, undefined, { cause: e })
      }
    } finally {
      // Every way out (the end, an error, an abort, a caller leaving early through return()) lets
      // go of the answer: otherwise its keep-alive connection stays taken.
      await answer.discard()
    }
    lastError = null
  }

  async function* rawRows(statement: string, signal?: AbortSignal): AsyncGenerator<AggregateRow> {
    for await (const series of query(statement, signal)) yield* seriesRows(series)
  }

  return {
    dataSource: 'influxdb_first',
    dialect: 'influxql',
    query,

    async listClients(window, signal) {
      const clients = new Set<string>()
      for await (const series of query(listClientsStatement(options.measurement, window.startMs, window.endMs), signal)) {
        const at = (series.columns ?? []).indexOf('value')
        for (const row of series.values ?? []) if (typeof row[at] === 'string') clients.add(row[at])
      }
      return [...clients].sort()
    },

    aggregate(window, aggregateOptions: AggregateOptions = {}) {
      const statement = aggregateStatement(options.measurement, window.startMs, window.endMs, aggregateOptions.clientOrgId)
      return mergeUnknownUsers(rawRows(statement, aggregateOptions.signal))
    },

    async ingest(events: UsageEvent[]): Promise<IngestResult> {
      return writeUsagePoints(writeTarget, events)
    },

    async externalDeletes(requestIds, signal): Promise<ExternalDeletes> {
      const wanted = [...new Set(requestIds)]
      const deletes: ExternalDeletes['deletes'] = []
      const found = new Set<string>()
      for (let i = 0; i < wanted.length; i += LOOKUP_IDS_PER_STATEMENT) {
        const statement = findPointsStatement(options.measurement, wanted.slice(i, i + LOOKUP_IDS_PER_STATEMENT))
        // RFC 3339 times: epoch nanoseconds do not fit a JSON number exactly.
        for await (const series of query(statement, signal, null)) {
          const at = (name: string) => (series.columns ?? []).indexOf(name)
          for (const row of series.values ?? []) {
            const text = (name: string) => {
              const v = row[at(name)]
              return typeof v === 'string' ? v : null
            }
            const requestId = text('request_id')
            const time = text('time')
            if (requestId === null || time === null) continue
            const point: StoredPoint = {
              request_id: requestId,
              time,
              tags: { client_org_id: text('client_org_id'), external_user: text('external_user'), model: text('model') },
            }
            found.add(requestId)
            deletes.push({ request_id: requestId, time, statement: deleteStatement(options.measurement, point) })
          }
        }
      }
      return { dialect: 'influxql', deletes, not_found: wanted.filter((id) => !found.has(id)) }
    },

    async check(): Promise<SourceHealth> {
      const started = performance.now()
      try {
        const v = await detectInfluxVersion(options.url, request, { auth: options.auth, timeoutMs: options.timeoutMs })
        return {
          status: 'up',
          detail: { version: v.version, query_language: 'influxql', latency_ms: elapsedMs(started), last_error: lastError },
        }
      } catch (e) {
        lastError = (e as Error).message
        return { status: 'down', detail: { version: null, query_language: 'influxql', latency_ms: elapsedMs(started), last_error: lastError } }
      }
    },

    async close() {},
  }
}
