// Raw stores for the operations tests: one whose queries can be made to fail, and an InfluxDB-first
// one whose liveness is a real HTTP /ping to a loopback server answering like InfluxDB 1.x. (NBP's
// stand-in is test/helpers/fake-nbp.ts, behind the production rate provider.)
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
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
