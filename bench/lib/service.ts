// The product's own service in a benchmark process: the app on a SQLite file (or a PostgreSQL
// database), listening on loopback, and a producer posting to it over real HTTP. The only place the
// bench wires the service together.
import { Agent, request as httpRequest } from 'node:http'
import { fixedClock } from '../../src/clock.js'
import { pino } from 'pino'
import type { UsageEvent } from '../../src/usage-event.js'
import { toRequestRecord } from './data.js'
import { buildApp, createServices, loadConfig } from './product.js'

export interface RunningService {
  port: number
  /** Answers a request in-process (no socket), e.g. to learn a read's body. */
  inject: (path: string) => Promise<{ statusCode: number; body: string; headers: Record<string, unknown> }>
  close(): Promise<void>
}

/**
 * The service as `npm start` runs it (embedded store, scheduler off, logging off), on the SQLite file
 * at `path`, or with `databaseUrl` on that PostgreSQL database (DATABASE_URL; `path` is then unused).
 */
export async function startService(path: string, nowMs: number, databaseUrl?: string): Promise<RunningService> {
  const config = loadConfig({ SQLITE_PATH: path, LOG_LEVEL: 'silent', BATCH_SCHEDULER_ENABLED: 'false', ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}) })
  const services = await createServices(config, { log: pino({ level: 'silent' }), clock: fixedClock(nowMs) })
  const app = await buildApp(config, services)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    port: (app.server.address() as { port: number }).port,
    inject: async (url) => {
      const r = await app.inject({ method: 'GET', url })
      return { statusCode: r.statusCode, body: r.body, headers: r.headers }
    },
    async close() {
      await app.close()
      await services.close()
    },
  }
}

/** One POST /usage/events body of `records` (the raw record's request form), serialised. */
export function ingestBody(records: UsageEvent[]): Buffer {
  return Buffer.from(JSON.stringify({ events: records.map(toRequestRecord) }))
}

/**
 * Posts bodies to POST /usage/events with `concurrency` requests in flight, as a producer with a
 * small pipeline does; `next()` hands out the next body (undefined: done). Any answer but 200 throws.
 */
export async function postBodies(port: number, next: () => Buffer | undefined, concurrency: number): Promise<{ accepted: number; duplicates: number; requests: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const post = (body: Buffer) =>
    new Promise<{ accepted: number; duplicates: number }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/usage/events', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (d: string) => (text += d))
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`))))
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  const total = { accepted: 0, duplicates: 0, requests: 0 }
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let body = next(); body !== undefined; body = next()) {
          // Add after the await: `x += await …` would add to a stale value.
          const answer = await post(body)
          total.accepted += answer.accepted
          total.duplicates += answer.duplicates
          total.requests += 1
        }
      }),
    )
  } finally {
    agent.destroy()
  }
  return total
}

/** Hands out `events` as POST /usage/events bodies of up to `perRequest` records, serialised as they are asked for. */
export function bodiesFrom(events: Iterator<UsageEvent>, perRequest: number): () => Buffer | undefined {
  return () => {
    const records: UsageEvent[] = []
    for (let r = events.next(); !r.done; r = events.next()) {
      records.push(r.value)
      if (records.length === perRequest) break
    }
    return records.length > 0 ? ingestBody(records) : undefined
  }
}
