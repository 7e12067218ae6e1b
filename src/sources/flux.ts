// Flux through @influxdata/influxdb-client (`POST /api/v2/query`, annotated CSV): InfluxDB 2.x and
// Cloud on TSM. Writes go through the same line protocol path as the InfluxQL source.
import { InfluxDB, flux, fluxDateTime, fluxExpression, HttpError, type ParameterizedQuery } from '@influxdata/influxdb-client'
import { toNano } from '../money.js'
import {
  InfluxQueryError,
  detectInfluxVersion,
  elapsedMs,
  httpRequestFor,
  writeUsagePoints,
  type FetchFn,
  type WriteTarget,
} from './influx-http.js'
import { mergeUnknownUsers } from './influxql.js'
import type { AggregateOptions, AggregateRow, ExternalDeletes, IngestResult, SourceHealth, UsageSource } from './types.js'
import type { UsageEvent } from '../usage-event.js'

export interface FluxSourceOptions {
  url: string
  token?: string
  org: string
  bucket: string
  measurement: string
  timeoutMs: number
  /** Replaces node:http for /ping and writes; the query client has its own HTTP stack. */
  fetch?: FetchFn
}

/**
 * The day query. Sums and the record count are computed per (client, user, model) only, so extra
 * tags of old points (request_id, api_key_hash) do not split groups. Every value is converted to
 * float before the pivot: token sums and counts are integers and the cost sum a float, and Flux
 * refuses to put both types in one `_value` column. Floats hold integers exactly up to 2^53.
 */
export function aggregateQuery(
  bucket: string,
  measurement: string,
  startMs: number,
  endMs: number,
  clientOrgId?: string,
): ParameterizedQuery {
  const start = fluxDateTime(new Date(startMs).toISOString())
  const stop = fluxDateTime(new Date(endMs).toISOString())
  const clientFilter =
    clientOrgId === undefined ? fluxExpression('') : flux`
  |> filter(fn: (r) => r.client_org_id == ${clientOrgId})`
  return flux`data = from(bucket: ${bucket})
  |> range(start: ${start}, stop: ${stop})
  |> filter(fn: (r) => r._measurement == ${measurement})
  |> filter(fn: (r) => r._field == "input_tokens" or r._field == "output_tokens" or r._field == "total_tokens" or r._field == "cost_usd")${clientFilter}
  |> group(columns: ["client_org_id", "external_user", "model", "_field"])

sums = data
  |> sum()
  |> toFloat()

records = data
  |> filter(fn: (r) => r._field == "input_tokens")
  |> count()
  |> toFloat()
  |> set(key: "_field", value: "records")

union(tables: [sums, records])
  |> group(columns: ["client_org_id", "external_user", "model"])
  |> pivot(rowKey: ["client_org_id", "external_user", "model"], columnKey: ["_field"], valueColumn: "_value")
  |> yield(name: "usage")`
}

/** InfluxDB keeps no point after this instant: the far end of an all-time lookup. */
const LOOKUP_STOP = '2262-04-11T00:00:00Z'
const LOOKUP_IDS_PER_QUERY = 100

/**
 * The points of some request ids over all time (a request id carries no date): their tags and
 * exact times. request_id is a string field, as this service writes it.
 */
export function findPointsQuery(bucket: string, measurement: string, requestIds: readonly string[]): ParameterizedQuery {
  return flux`from(bucket: ${bucket})
  |> range(start: ${fluxDateTime('1970-01-01T00:00:00Z')}, stop: ${fluxDateTime(LOOKUP_STOP)})
  |> filter(fn: (r) => r._measurement == ${measurement} and r._field == "request_id")
  |> filter(fn: (r) => contains(value: r._value, set: ${[...requestIds]}))
  |> keep(columns: ["_time", "_value", "client_org_id", "external_user", "model"])
  |> group()
  |> yield(name: "points")`
}

/** A delete predicate string: InfluxQL-like, identifier and value double-quoted with backslash escapes. */
function predicateQuote(text: string): string {
  let out = '"'
  for (const c of text) {
    if (c === '\\' || c === '"') out += `\\${c}`
    else if (c === '\n') out += '\\n'
    else out += c
  }
  return out + '"'
}

/**
 * The InfluxDB 2.x delete predicate of one point (POST /api/v2/delete, or `influx delete
 * --predicate`): measurement and the three tags; with start = stop = the point's time, which the
 * delete API takes inclusively, it removes exactly that point. A tag the point lacks is left out.
 */
export function deletePredicate(measurement: string, tags: Record<'client_org_id' | 'external_user' | 'model', string | null>): string {
  const terms = [`_measurement=${predicateQuote(measurement)}`]
  for (const [key, value] of Object.entries(tags)) if (value !== null && value !== '') terms.push(`${predicateQuote(key)}=${predicateQuote(value)}`)
  return terms.join(' AND ')
}

function numeric(value: unknown, what: string, integer: boolean): number {
  if (value === null || value === undefined || value === '') return 0
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    throw new InfluxQueryError(`InfluxDB returned an unusable ${what}: ${JSON.stringify(value)}`)
  }
  return n
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

function textOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null
}

export function createFluxSource(options: FluxSourceOptions): UsageSource {
  const client = new InfluxDB({ url: options.url, token: options.token, timeout: options.timeoutMs })
  const queryApi = client.getQueryApi(options.org)
  const pingAndWrites = httpRequestFor(options.fetch)
  const auth = options.token ? ({ kind: 'token', token: options.token, scheme: 'Token' } as const) : ({ kind: 'none' } as const)
  const writeTarget: WriteTarget = {
    url: options.url,
    auth,
    api: { kind: 'v2', org: options.org, bucket: options.bucket },
    measurement: options.measurement,
    timeoutMs: options.timeoutMs,
    request: pingAndWrites,
  }
  let lastError: string | null = null

  async function* rawRows(query: ParameterizedQuery, signal?: AbortSignal): AsyncGenerator<AggregateRow> {
    try {
      for await (const { values, tableMeta } of queryApi.iterateRows(query)) {
        // Leaving the loop cancels the HTTP response: the client has no signal of its own.
        signal?.throwIfAborted()
        const row = tableMeta.toObject(values)
        // An error after the answer started comes as a table with `error` and `reference` columns.
        if (tableMeta.columns.some((c) => c.label === 'error')) {
          throw new InfluxQueryError(`InfluxDB query failed: ${String(row.error)}`)
        }
        yield {
          client_org_id: text(row.client_org_id),
          external_user: text(row.external_user),
          model: text(row.model),
          input_tokens: numeric(row.input_tokens, 'input_tokens', true),
          output_tokens: numeric(row.output_tokens, 'output_tokens', true),
          total_tokens: numeric(row.total_tokens, 'total_tokens', true),
          total_requests: numeric(row.records, 'records', true),
          // The server summed floats: round that sum once, through its shortest round-trip text.
          raw_cost_nano_usd: toNano(numeric(row.cost_usd, 'cost_usd', false)),
        }
      }
      lastError = null
    } catch (e) {
      lastError = (e as Error).message
      if (e instanceof InfluxQueryError) throw e
      if (e instanceof HttpError) {
        throw new InfluxQueryError(`InfluxDB query answered HTTP ${e.statusCode}: ${(e.body ?? e.message).slice(0, 300)}`, e.statusCode, {
          cause: e,
        })
      }
      throw new InfluxQueryError(`InfluxDB query failed: ${(e as Error).message}`, undefined, { cause: e })
    }
  }

  return {
    dataSource: 'influxdb_first',
    dialect: 'flux',

    aggregate(window, aggregateOptions: AggregateOptions = {}) {
      const query = aggregateQuery(options.bucket, options.measurement, window.startMs, window.endMs, aggregateOptions.clientOrgId)
      return mergeUnknownUsers(rawRows(query, aggregateOptions.signal))
    },

    async ingest(events: UsageEvent[]): Promise<IngestResult> {
      return writeUsagePoints(writeTarget, events)
    },

    async externalDeletes(requestIds): Promise<ExternalDeletes> {
      const wanted = [...new Set(requestIds)]
      const deletes: ExternalDeletes['deletes'] = []
      const found = new Set<string>()
      try {
        for (let i = 0; i < wanted.length; i += LOOKUP_IDS_PER_QUERY) {
          const query = findPointsQuery(options.bucket, options.measurement, wanted.slice(i, i + LOOKUP_IDS_PER_QUERY))
          for await (const { values, tableMeta } of queryApi.iterateRows(query)) {
            const row = tableMeta.toObject(values)
            if (tableMeta.columns.some((c) => c.label === 'error')) throw new InfluxQueryError(`InfluxDB query failed: ${String(row.error)}`)
            const requestId = typeof row._value === 'string' ? row._value : null
            const time = typeof row._time === 'string' ? row._time : null
            if (requestId === null || time === null) continue
            const tags = { client_org_id: textOrNull(row.client_org_id), external_user: textOrNull(row.external_user), model: textOrNull(row.model) }
            found.add(requestId)
            deletes.push({ request_id: requestId, time, predicate: deletePredicate(options.measurement, tags), start: time, stop: time })
          }
        }
      } catch (e) {
        lastError = (e as Error).message
        if (e instanceof InfluxQueryError) throw e
        throw new InfluxQueryError(`InfluxDB query failed: ${(e as Error).message}`, e instanceof HttpError ? e.statusCode : undefined, { cause: e })
      }
      return { dialect: 'flux', deletes, not_found: wanted.filter((id) => !found.has(id)) }
    },

    async check(): Promise<SourceHealth> {
      const started = performance.now()
      try {
        const v = await detectInfluxVersion(options.url, pingAndWrites, { auth, timeoutMs: options.timeoutMs })
        return { status: 'up', detail: { version: v.version, query_language: 'flux', latency_ms: elapsedMs(started), last_error: lastError } }
      } catch (e) {
        lastError = (e as Error).message
        return { status: 'down', detail: { version: null, query_language: 'flux', latency_ms: elapsedMs(started), last_error: lastError } }
      }
    },

    async close() {},
  }
}
