// Stand-ins for the outside world used by the operations tests: an NBP-shaped HTTP server with a
// minimal rate provider over it, an InfluxDB-shaped /ping server with a source that checks it,
// and a raw store whose queries can be made to fail.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Clock } from '../../src/clock.js'
import type { RateHealth, RateProvider } from '../../src/rates/types.js'
import type { UsageSource } from '../../src/sources/types.js'

export interface LocalServer {
  url: string
  hits: number
  close(): Promise<void>
}

async function listen(handler: (path: string) => { status: number; headers?: Record<string, string>; body?: string }): Promise<LocalServer> {
  const state = { hits: 0 }
  const server: Server = createServer((req, res) => {
    state.hits += 1
    const answer = handler(req.url ?? '/')
    res.writeHead(answer.status, answer.headers ?? {})
    res.end(answer.body ?? '')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get hits() {
      return state.hits
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Answers NBP's table A USD range query with one rate, dated the day before the range end. */
export function startLocalNbp(): Promise<LocalServer> {
  return listen((path) => {
    const m = /\/exchangerates\/rates\/a\/usd\/(\d{4}-\d{2}-\d{2})\/(\d{4}-\d{2}-\d{2})\//.exec(path)
    if (!m) return { status: 400, body: '400 BadRequest' }
    const body = { table: 'A', currency: 'dolar amerykański', code: 'USD', rates: [{ no: '230/A/NBP/2026', effectiveDate: m[2], mid: 3.6512 }] }
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
  })
}

/**
 * The smallest honest NBP client: one request per date, health remembered, each failure reported
 * through `onFetchFailed` (the production client is built elsewhere; this one drives /health).
 */
export function httpRateProvider(baseUrl: string, clock: Clock, onFetchFailed: () => void): RateProvider {
  const health: RateHealth = { last_success_at: null, last_rate: null, last_rate_date: null, last_error: null, last_error_at: null }
  return {
    health: () => ({ ...health }),
    async resolveUsdPlnRate(usageDate) {
      const at = new Date(clock.now()).toISOString()
      try {
        const res = await fetch(`${baseUrl}/exchangerates/rates/a/usd/${usageDate}/${usageDate}/?format=json`)
        if (!res.ok) throw new Error(`NBP answered ${res.status}`)
        const body = (await res.json()) as { rates: Array<{ no: string; effectiveDate: string; mid: number }> }
        const last = body.rates.at(-1)!
        Object.assign(health, { last_success_at: at, last_rate: String(last.mid), last_rate_date: last.effectiveDate })
        const rate = {
          usage_date: usageDate,
          rate: String(last.mid),
          effective_date: last.effectiveDate,
          table_no: last.no,
          source: 'nbp' as const,
          policy: 'previous-business-day' as const,
          fetched_at: at,
        }
        return { ok: true as const, rate }
      } catch (e) {
        onFetchFailed()
        const reason = `NBP unreachable: ${(e as Error).message}`
        Object.assign(health, { last_error: reason, last_error_at: at })
        return { ok: false as const, reason }
      }
    },
  }
}

/** Answers GET /ping like InfluxDB 1.x: 204 with its version header. */
export function startInfluxPing(): Promise<LocalServer> {
  return listen((path) =>
    path.startsWith('/ping') ? { status: 204, headers: { 'X-Influxdb-Version': '1.6.7~rc0' } } : { status: 404 },
  )
}

/**
 * An InfluxDB-first source for health tests: raw usage from the embedded store, liveness from a
 * real HTTP /ping (the real InfluxDB sources are built in parallel and report the same way).
 */
export function pingCheckedSource(inner: UsageSource, influxUrl: string): UsageSource {
  return {
    dataSource: 'influxdb_first',
    dialect: 'influxql',
    aggregate: (window, options) => inner.aggregate(window, options),
    ingest: (events) => inner.ingest(events),
    async check() {
      try {
        const res = await fetch(`${influxUrl}/ping`, { signal: AbortSignal.timeout(2_000) })
        if (res.status !== 204) return { status: 'down', detail: { error: `ping answered ${res.status}` } }
        return { status: 'up', detail: { version: res.headers.get('x-influxdb-version') } }
      } catch (e) {
        return { status: 'down', detail: { error: (e as Error).message } }
      }
    },
    close: () => inner.close(),
  }
}

/** The embedded store whose aggregation query fails while `failing` is set (a real query error path). */
export function failingSource(inner: UsageSource): UsageSource & { failing: boolean } {
  const source = {
    failing: false,
    dataSource: inner.dataSource,
    dialect: inner.dialect,
    aggregate(window: Parameters<UsageSource['aggregate']>[0], options?: Parameters<UsageSource['aggregate']>[1]) {
      if (!source.failing) return inner.aggregate(window, options)
      return (async function* () {
        throw new Error('aggregation query failed: store unavailable')
      })()
    },
    ingest: (events: Parameters<UsageSource['ingest']>[0]) => inner.ingest(events),
    check: () => inner.check(),
    close: () => inner.close(),
  }
  return source
}
