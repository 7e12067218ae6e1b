// One measured scenario per process: `node --import tsx bench/scenario.ts <name> '<json args>'`.
// Each prints one `RESULT {...}` line carrying its figures and its own peak RSS (maxRSS).
// Timings cover only the measured work, never module loading or setup.
import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { spawn } from 'node:child_process'
import { request as httpRequest, Agent } from 'node:http'
import { copyFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { buildApp } from '../src/app.js'
import { createBatchService } from '../src/batch/service.js'
import { addDays, dayWindow, datesInRange, fixedClock, systemClock } from '../src/clock.js'
import { loadConfig } from '../src/config.js'
import { openDb } from '../src/db/sqlite/open.js'
import { openSqliteStore, type SqliteStore } from '../src/db/sqlite/store.js'
import type { RateProvider } from '../src/rates/types.js'
import { createServices } from '../src/services.js'
import { AGGREGATE_SQL, GROUP_SQL, createSqliteSource } from '../src/sources/sqlite.js'
import type { UsageSource } from '../src/sources/types.js'
import { BENCH_DIR, ROOT_DIR, reportResult } from './lib/child.js'
import { generateEvents, insertEventsDirect, INSERT_EVENT_SQL, toLineProtocol, toRequestRecord, type Shape } from './lib/data.js'
import { influxExec, writeLines } from './lib/influxd.js'
import { BENCH_DB, MEASUREMENT, groupedDayQuery, listClients, loadInfluxSourceFactory, runChunkedQuery, type QueryTally } from './lib/influxql.js'

export const TIME_ZONE = 'Europe/Warsaw'
/** Service clock for every scenario: 2026-11-28 13:00 Warsaw, after every benchmarked date. */
export const NOW_MS = Date.parse('2026-11-28T12:00:00Z')

/** A fixed NBP-like rate, so the batch prices PLN as in production (no network in the bench). */
const fixedRate: RateProvider = {
  resolveUsdPlnRate: async (usageDate) => ({
    ok: true,
    rate: {
      usage_date: usageDate,
      rate: '4.0341',
      effective_date: addDays(usageDate, -1),
      table_no: '237/A/NBP/2026',
      source: 'nbp',
      policy: 'previous-business-day',
      fetched_at: new Date(NOW_MS).toISOString(),
    },
  }),
}

const silent = pino({ level: 'silent' })

function elapsedMs(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6
}

async function batchDay(source: UsageSource, store: SqliteStore, date: string, perClientConcurrency?: number) {
  const batch = createBatchService({
    store,
    source,
    rates: fixedRate,
    clock: systemClock,
    log: silent,
    timeZone: TIME_ZONE,
    defaultMarkupRate: '1.3',
    ...(perClientConcurrency === undefined ? {} : { perClientConcurrency }),
  })
  const started = process.hrtime.bigint()
  const run = await batch.runDate(date, 'cli')
  const ms = elapsedMs(started)
  if (run.status !== 'succeeded') throw new Error(`batch run ended ${run.status}: ${run.error_message}`)
  return { ms, records: run.records_processed, summaries: run.summaries_written, clients: run.clients_processed }
}

type Args = Record<string, unknown> & { date: string }

const scenarios: Record<string, (a: Args) => Promise<Record<string, unknown>>> = {
  /** Node + the product's modules, nothing else: the floor under every peak RSS. */
  async baseline() {
    return {}
  },

  async 'sqlite-setup'(a) {
    const path = a.path as string
    const db = openDb({ path })
    const started = process.hrtime.bigint()
    const inserted = insertEventsDirect(db.$client, generateEvents(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'day'), 50_000, NOW_MS)
    db.$client.pragma('wal_checkpoint(TRUNCATE)')
    db.$client.close()
    return { inserted, ms: elapsedMs(started) }
  },

  /** The limit: the source's own grouped SELECT, alone, read to the end with the same connection settings. */
  async 'sqlite-query'(a) {
    const conn = new Database(a.path as string, { readonly: true, fileMustExist: true })
    const { startMs, endMs } = dayWindow(a.date, TIME_ZONE)
    const statement = conn.prepare(AGGREGATE_SQL + GROUP_SQL).safeIntegers(true)
    const started = process.hrtime.bigint()
    let rows = 0
    let records = 0n
    for (const r of statement.iterate({ startMs, endMs }) as IterableIterator<{ total_requests: bigint }>) {
      rows += 1
      records += r.total_requests
    }
    const ms = elapsedMs(started)
    conn.close()
    return { ms, rows, records: Number(records) }
  },

  /** A first run of the day, on a fresh copy of the set-up file (every measured round does the same work). */
  async 'sqlite-batch'(a) {
    const path = a.path as string
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
    copyFileSync(a.source as string, path)
    const store = openSqliteStore({ path })
    const source = createSqliteSource({ store, clock: systemClock })
    const out = await batchDay(source, store, a.date)
    await source.close()
    await store.close()
    return out
  },

  async 'influx-load'(a) {
    const url = a.url as string
    await influxExec(url, `CREATE DATABASE "${BENCH_DB}"`)
    const started = process.hrtime.bigint()
    const lines = (function* () {
      for (const e of generateEvents(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'day')) yield toLineProtocol(e, MEASUREMENT)
    })()
    const written = await writeLines(url, BENCH_DB, lines)
    return { written, ms: elapsedMs(started) }
  },

  /** The limit on InfluxDB: the one grouped InfluxQL statement, streamed with chunked=true and consumed fully. */
  async 'influx-raw'(a) {
    const started = process.hrtime.bigint()
    const tally = await runChunkedQuery(a.url as string, BENCH_DB, groupedDayQuery(dayWindow(a.date, TIME_ZONE), TIME_ZONE))
    return { ms: elapsedMs(started), ...tally }
  },

  /** How the earlier system worked: list the clients, then one query per client, one after another. */
  async 'influx-perclient'(a) {
    const url = a.url as string
    const window = dayWindow(a.date, TIME_ZONE)
    const started = process.hrtime.bigint()
    const clients = await listClients(url, BENCH_DB)
    const tally: QueryTally = { rows: 0, records: 0 }
    for (const client of clients) await runChunkedQuery(url, BENCH_DB, groupedDayQuery(window, TIME_ZONE, client), tally)
    return { ms: elapsedMs(started), queries: clients.length + 1, ...tally }
  },

  async 'influx-batch'(a) {
    const { factory, reason } = await loadInfluxSourceFactory()
    if (!factory) return { unavailable: reason }
    const store = openSqliteStore({ path: a.path as string })
    const source = factory({ url: a.url as string, database: BENCH_DB, measurement: MEASUREMENT, clock: systemClock, timeZone: TIME_ZONE })
    // perClient: the service's default INFLUXDB_AGGREGATION_MODE=per-client with its concurrency;
    // absent: one grouped query (INFLUXDB_AGGREGATION_MODE=grouped).
    const out = await batchDay(source, store, a.date, a.perClient as number | undefined)
    await source.close()
    await store.close()
    return out
  },

  /** The limit for ingestion: the same rows, same schema and statement, one transaction per 1,000. */
  async 'ingest-direct'(a) {
    const db = openDb({ path: a.path as string })
    const events = [...generateEvents(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'ing')]
    const insert = db.$client.prepare(INSERT_EVENT_SQL)
    const perTransaction = a.perRequest as number
    const flush = db.$client.transaction((batch: typeof events) => {
      let n = 0
      for (const e of batch) n += insert.run({ ...e, received_at: NOW_MS }).changes
      return n
    })
    const started = process.hrtime.bigint()
    let accepted = 0
    for (let i = 0; i < events.length; i += perTransaction) accepted += flush(events.slice(i, i + perTransaction))
    const ms = elapsedMs(started)
    db.$client.close()
    return { ms, accepted, eventsPerSecond: (accepted / ms) * 1000 }
  },

  /** POST /usage/events over real HTTP on loopback; bodies are serialised before the clock starts. */
  async 'ingest-http'(a) {
    const path = a.path as string
    const perRequest = a.perRequest as number
    const concurrency = a.concurrency as number
    const config = loadConfig({ SQLITE_PATH: path, LOG_LEVEL: 'silent', BATCH_SCHEDULER_ENABLED: 'false' })
    const services = await createServices(config, { log: silent, clock: fixedClock(NOW_MS) })
    const app = await buildApp(config, services)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as { port: number }).port
    const records = [...generateEvents(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'ing')].map(toRequestRecord)
    const bodies: Buffer[] = []
    for (let i = 0; i < records.length; i += perRequest) bodies.push(Buffer.from(JSON.stringify({ events: records.slice(i, i + perRequest) })))
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
    const post = (body: Buffer) =>
      new Promise<{ accepted: number }>((resolve, reject) => {
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
    let next = 0
    let accepted = 0
    const started = process.hrtime.bigint()
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!
          // Read `accepted` after the await: `accepted += await …` would add to a stale value.
          const answer = await post(body)
          accepted += answer.accepted
        }
      }),
    )
    const ms = elapsedMs(started)
    agent.destroy()
    await app.close()
    await services.close()
    return { ms, accepted, requests: bodies.length, eventsPerSecond: (accepted / ms) * 1000 }
  },

  /** 1,000 clients × 365 days of client_daily_usage rows, inserted directly. */
  async 'reads-setup'(a) {
    const db = openDb({ path: a.path as string })
    const days = datesInRange(a.from as string, a.date)
    const insert = db.$client.prepare(`INSERT INTO client_daily_usage
      (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests, raw_cost_nano_usd,
       markup_cost_nano_usd, markup_cost_nano_pln, markup_rate, exchange_rate_usd_pln, exchange_rate_date, data_source,
       batch_run_id, created_at, updated_at, primary_model, unique_users)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '1.3', '4.0341', ?, 'sqlite', 1, ?, ?, ?, ?)`)
    const now = new Date(NOW_MS).toISOString()
    let rows = 0
    const started = process.hrtime.bigint()
    db.$client.transaction(() => {
      for (let c = 0; c < (a.clients as number); c++) {
        for (const [d, day] of days.entries()) {
          const tokens = 10_000 + ((c * 31 + d * 17) % 90_000)
          const raw = tokens * 700
          insert.run(`client-${String(c).padStart(4, '0')}`, day, tokens, tokens - 1000, 1000, 10 + (d % 50), raw, raw * 1.3, Math.round(raw * 1.3 * 4.0341), addDays(day, -1), now, now, 'vendor-1/model-001', 1 + (c % 20))
          rows += 1
        }
      }
    })()
    db.$client.pragma('wal_checkpoint(TRUNCATE)')
    db.$client.close()
    return { rows, ms: elapsedMs(started) }
  },

  /**
   * Serves either the product's app (`kind: app`) or a bare Fastify route returning a constant
   * (`kind: bare`), and drives it with autocannon from a separate process (bench/load.ts).
   */
  async 'reads-serve'(a) {
    const kind = a.kind as 'app' | 'bare'
    let close: () => Promise<void>
    let port: number
    let paths: string[]
    if (kind === 'app') {
      const path = a.path as string
      const config = loadConfig({ SQLITE_PATH: path, LOG_LEVEL: 'silent', BATCH_SCHEDULER_ENABLED: 'false' })
      const services = await createServices(config, { log: silent, clock: fixedClock(NOW_MS) })
      const app = await buildApp(config, services)
      await app.listen({ host: '127.0.0.1', port: 0 })
      port = (app.server.address() as { port: number }).port
      close = async () => {
        await app.close()
        await services.close()
      }
      const [from, to] = a.range as [string, string]
      paths = Array.from({ length: a.clients as number }, (_, c) => `/usage/clients/client-${String(c).padStart(4, '0')}/daily?from=${from}&to=${to}`)
    } else {
      // The same server options as buildApp, so the difference is the route's own work.
      const bare = Fastify({ logger: false, requestIdHeader: 'x-request-id' })
      bare.get('/constant', async () => ({ ok: true }))
      await bare.listen({ host: '127.0.0.1', port: 0 })
      port = (bare.server.address() as { port: number }).port
      close = () => bare.close()
      paths = ['/constant']
    }
    const load = await runLoad({ url: `http://127.0.0.1:${port}`, paths, connections: a.connections as number, durationS: a.durationS as number })
    await close()
    return { kind, ...load }
  },
}

/** autocannon in its own process, so the load generator does not share the server's event loop. */
async function runLoad(args: { url: string; paths: string[]; connections: number; durationS: number }): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'load.ts'), JSON.stringify(args)], { cwd: ROOT_DIR, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  if (code !== 0) throw new Error(`load generator failed (exit ${code})`)
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>
}

const [name, rawArgs] = process.argv.slice(2)
const scenario = name ? scenarios[name] : undefined
if (!scenario) {
  process.stderr.write(`unknown scenario ${name}; one of ${Object.keys(scenarios).join(', ')}\n`)
  process.exit(2)
}
scenario(JSON.parse(rawArgs ?? '{}') as Args).then(
  (result) => {
    reportResult(result)
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
    process.exit(1)
  },
)
