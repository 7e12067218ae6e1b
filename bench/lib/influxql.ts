// The InfluxDB side of the benchmark: the raw grouped InfluxQL query (the limit), the per-client
// sequential queries the earlier system ran, and the product's InfluxQL source.
import type { Clock } from '../../src/clock.js'
import type { UsageSource } from '../../src/sources/types.js'

export const BENCH_DB = 'usage_bench'
export const MEASUREMENT = 'usage_tracking'

/** What the bench needs of the product's InfluxQL source: a UsageSource for a base URL and a database. */
export type InfluxSourceFactory = (options: { url: string; database: string; measurement: string; clock: Clock; timeZone: string }) => UsageSource

/** The product's InfluxQL source over a local influxd 1.x (no auth, v1 writes). */
export async function loadInfluxSourceFactory(): Promise<{ factory: InfluxSourceFactory | null; reason: string }> {
  const { createInfluxQLSource } = await import('../../src/sources/influxql.js')
  return {
    factory: (o) =>
      createInfluxQLSource({
        url: o.url,
        database: o.database,
        measurement: o.measurement,
        auth: { kind: 'none' },
        writeApi: { kind: 'v1' },
        timeoutMs: 3_600_000,
      }),
    reason: '',
  }
}

/** InfluxQL string literal: single quotes and backslashes escaped. */
export function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

const FIELDS = 'sum("input_tokens") AS input_tokens, sum("output_tokens") AS output_tokens, sum("total_tokens") AS total_tokens, sum("cost_usd") AS cost_usd, count("input_tokens") AS records'

/** The day's grouped sums in one statement, between the day's explicit UTC bounds (as src/sources/influxql.ts queries). */
export function groupedDayQuery(window: { startMs: number; endMs: number }, timeZone: string, clientOrgId?: string): string {
  const where = [
    ...(clientOrgId !== undefined ? [`"client_org_id" = ${literal(clientOrgId)}`] : []),
    `time >= '${new Date(window.startMs).toISOString()}'`,
    `time < '${new Date(window.endMs).toISOString()}'`,
  ].join(' AND ')
  return (
    `SELECT ${FIELDS} FROM "${MEASUREMENT}" WHERE ${where} ` +
    `GROUP BY time(1d), "client_org_id", "external_user", "model" fill(none) tz(${literal(timeZone)})`
  )
}

export interface QueryTally {
  /** Grouped rows (series × buckets) read. */
  rows: number
  /** Sum of the `records` column: raw points aggregated. */
  records: number
}

interface ChunkSeries {
  columns?: string[]
  values?: unknown[][]
}
interface Chunk {
  error?: string
  results?: Array<{ error?: string; series?: ChunkSeries[] }>
}

/** Runs a query with chunked=true and consumes the whole streamed answer; throws on any error. */
export async function runChunkedQuery(url: string, db: string, q: string, tally: QueryTally = { rows: 0, records: 0 }): Promise<QueryTally> {
  const params = new URLSearchParams({ db, q, chunked: 'true', chunk_size: '10000', epoch: 'ms' })
  const res = await fetch(`${url}/query?${params}`)
  if (!res.ok || !res.body) throw new Error(`InfluxQL query failed: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`)
  const decoder = new TextDecoder()
  let pending = ''
  const consume = (line: string) => {
    if (line.trim() === '') return
    const chunk = JSON.parse(line) as Chunk
    const error = chunk.error ?? chunk.results?.find((r) => r.error)?.error
    if (error) throw new Error(`InfluxQL error: ${error}`)
    for (const result of chunk.results ?? []) {
      for (const series of result.series ?? []) {
        const recordsAt = series.columns?.indexOf('records') ?? -1
        for (const v of series.values ?? []) {
          tally.rows += 1
          if (recordsAt >= 0) tally.records += Number(v[recordsAt])
        }
      }
    }
  }
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(part, { stream: true })
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      consume(pending.slice(0, nl))
      pending = pending.slice(nl + 1)
    }
  }
  consume(pending + decoder.decode())
  return tally
}

/** The clients with points, as the earlier system listed them before querying each. */
export async function listClients(url: string, db: string): Promise<string[]> {
  const params = new URLSearchParams({ db, q: `SHOW TAG VALUES FROM "${MEASUREMENT}" WITH KEY = "client_org_id"` })
  const res = await fetch(`${url}/query?${params}`)
  const json = (await res.json()) as { results: Array<{ error?: string; series?: Array<{ values: string[][] }> }> }
  const error = json.results.find((r) => r.error)?.error
  if (error) throw new Error(`InfluxQL error: ${error}`)
  return (json.results[0]?.series?.[0]?.values ?? []).map((v) => v[1]!)
}
