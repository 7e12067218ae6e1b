// One measured scenario per process: `node dist/bench/scenario.js <name> '<json args>'` (compiled, bench/lib/child.ts).
// Each prints one `RESULT {...}` line carrying its figures and its own peak RSS (maxRSS).
// Timings cover only the measured work, never module loading or setup. The product is the compiled
// one (bench/lib/product.ts).
import Database from 'better-sqlite3'
import Fastify from 'fastify'
import { spawn } from 'node:child_process'
import { copyFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { addDays, dayWindow, datesInRange, systemClock } from '../src/clock.js'
import type { RateProvider } from '../src/rates/types.js'
import type { UsageSource } from '../src/sources/types.js'
import type { UsageEvent } from '../src/usage-event.js'
import { BENCH_DIR, ROOT_DIR, profiled, reportResult } from './lib/child.js'
import { clientName, generateDay, generateEvents, insertEvent, toLineProtocol, type DataOrder, type Shape } from './lib/data.js'
import { AGGREGATE_SQL, GROUP_SQL, INSERT_EVENT_SQL, createBatchService, createSqliteSource, openDb, openSqliteStore, serverOptions } from './lib/product.js'
import { PG_BY_CLIENT_SQL, PG_INGEST_SQL, createPostgresSource, openPostgres, openPostgresStore, pgIngestParameters, readWithCursor } from './lib/product.js'
import { insertRows, tableColumns } from './lib/pg-rows.js'
import { bodiesFrom, ingestBody, postBodies, startService } from './lib/service.js'
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

/** The three summary tables a batch day writes (docs/data-model.md). */
const SUMMARY_TABLES = ['client_user_daily_usage', 'client_model_daily_usage', 'client_daily_usage'] as const

function elapsedMs(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6
}

/**
 * CPU time (user + system, every thread of the process: the batch's day reader worker included)
 * since `started`, ms. On a shared machine wall time swings with the load; CPU time shows whether
 * the work itself changed.
 */
function cpuMs(started: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(started)
  return (used.user + used.system) / 1000
}

async function batchDay(source: UsageSource, store: Parameters<typeof createBatchService>[0]['store'], date: string, perClientConcurrency?: number) {
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
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  const run = await profiled('batch', () => batch.runDate(date, 'cli'))
  const ms = elapsedMs(started)
  if (run.status !== 'succeeded') throw new Error(`batch run ended ${run.status}: ${run.error_message}`)
  return { ms, cpuMs: cpuMs(cpu), records: run.records_processed, summaries: run.summaries_written, clients: run.clients_processed }
}

type Args = Record<string, unknown> & { date: string }

const scenarios: Record<string, (a: Args) => Promise<Record<string, unknown>>> = {
  /** Node + the product's modules, nothing else: the floor under every peak RSS. */
  async baseline() {
    return {}
  },

  /**
   * The batch day's raw records, posted to the service's own POST /usage/events over HTTP in
   * requests of `perRequest` records (`concurrency` in flight), in time order or shuffled.
   */
  async 'sqlite-setup'(a) {
    const path = a.path as string
    const service = await startService(path, NOW_MS)
    const events = generateDay(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'day', a.order as DataOrder)
    const perRequest = a.perRequest as number
    const next = () => {
      const records: UsageEvent[] = []
      for (let r = events.next(); !r.done; r = events.next()) {
        records.push(r.value)
        if (records.length === perRequest) break
      }
      return records.length > 0 ? ingestBody(records) : undefined
    }
    const started = process.hrtime.bigint()
    const posted = await postBodies(service.port, next, a.concurrency as number)
    const ms = elapsedMs(started)
    await service.close()
    const conn = new Database(path)
    conn.pragma('wal_checkpoint(TRUNCATE)')
    conn.close()
    return { ...posted, ms, eventsPerSecond: (posted.accepted / ms) * 1000 }
  },

  /** The read half of the batch day's limit: the source's own grouped SELECT, alone, read to the end. */
  async 'sqlite-read'(a) {
    const conn = new Database(a.path as string, { readonly: true, fileMustExist: true })
    const { startMs, endMs } = dayWindow(a.date, TIME_ZONE)
    const statement = conn.prepare(AGGREGATE_SQL + GROUP_SQL).raw(true).safeIntegers(true)
    const cpu = process.cpuUsage()
    const started = process.hrtime.bigint()
    let rows = 0
    let records = 0n
    for (const r of statement.iterate({ startMs, endMs }) as IterableIterator<bigint[]>) {
      rows += 1
      records += r[7]!
    }
    const ms = elapsedMs(started)
    const cpuUsed = cpuMs(cpu)
    conn.close()
    return { ms, cpuMs: cpuUsed, rows, records: Number(records) }
  },

  /**
   * A first run of the day, on a fresh copy of the set-up file (every measured round does the same
   * work). The copy is kept: its summary rows are what the write half of the limit inserts.
   */
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

  /**
   * The write half of the batch day's limit: the summary rows a batch wrote (read from its file
   * first, untimed), inserted into a fresh file of the same schema by plain prepared INSERTs in one
   * transaction.
   */
  async 'sqlite-write'(a) {
    const from = new Database(a.rowsFrom as string, { readonly: true, fileMustExist: true })
    const path = a.path as string
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
    const db = openDb({ path })
    const tables = SUMMARY_TABLES.map((table) => {
      const columns = (from.prepare(`SELECT name FROM pragma_table_info('${table}') WHERE name <> 'id'`).pluck().all() as string[])
      const rows = from.prepare(`SELECT ${columns.join(', ')} FROM ${table} WHERE usage_date = ?`).raw(true).safeIntegers(true).all(a.date) as unknown[][]
      const insert = db.$client.prepare(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`)
      return { rows, insert }
    })
    from.close()
    const cpu = process.cpuUsage()
    const started = process.hrtime.bigint()
    await profiled('write-limit', async () =>
      db.$client.transaction(() => {
        for (const t of tables) for (const row of t.rows) t.insert.run(row)
      })(),
    )
    const ms = elapsedMs(started)
    const cpuUsed = cpuMs(cpu)
    db.$client.close()
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
    return { ms, cpuMs: cpuUsed, rows: tables.reduce((n, t) => n + t.rows.length, 0) }
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

  /**
   * The limit for ingestion: the same records, stored by the same INSERT on the same schema and
   * indexes, one transaction per `perRequest`, straight from memory.
   */
  async 'ingest-direct'(a) {
    const db = openDb({ path: a.path as string })
    const events = [...generateDay(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'ing', 'time')]
    const insert = db.$client.prepare(INSERT_EVENT_SQL)
    const perTransaction = a.perRequest as number
    const flush = db.$client.transaction((from: number, to: number) => {
      let n = 0
      for (let i = from; i < to; i++) n += insertEvent(insert, events[i]!, NOW_MS)
      return n
    })
    const started = process.hrtime.bigint()
    const cpuBefore = process.cpuUsage()
    let accepted = 0
    await profiled('ingest-direct', async () => {
      for (let i = 0; i < events.length; i += perTransaction) accepted += flush(i, Math.min(i + perTransaction, events.length))
    })
    const ms = elapsedMs(started)
    const cpuUsed = cpuMs(cpuBefore)
    db.$client.close()
    return { ms, cpuMs: cpuUsed, accepted, eventsPerSecond: (accepted / ms) * 1000 }
  },

  /** POST /usage/events over real HTTP on loopback; bodies are serialised before the clock starts. */
  async 'ingest-http'(a) {
    const perRequest = a.perRequest as number
    const service = await startService(a.path as string, NOW_MS, a.databaseUrl as string | undefined)
    // Only the serialised bodies (outside the JS heap) are kept: a producer's records never sit in the
    // service's heap, where 200,000 objects would make each of its major collections mark them all.
    const bodies: Buffer[] = []
    const take = bodiesFrom(generateDay(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'ing', 'time'), perRequest)
    for (let body = take(); body !== undefined; body = take()) bodies.push(body)
    let next = 0
    const started = process.hrtime.bigint()
    const cpuBefore = process.cpuUsage()
    const posted = await profiled('ingest-http', () => postBodies(service.port, () => bodies[next++], a.concurrency as number))
    const ms = elapsedMs(started)
    // CPU time of the whole process: the service, its ingest writer thread and the producer.
    const cpuUsed = cpuMs(cpuBefore)
    await service.close()
    return { ms, cpuMs: cpuUsed, ...posted, eventsPerSecond: (posted.accepted / ms) * 1000 }
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
   * Serves either the product's app (`kind: app`) or a bare Fastify route (`kind: bare`) answering
   * each path with the very body the app answers for it, and drives it with autocannon from a
   * separate process (bench/load.ts). Before the load, both take one pass over every path through
   * the app: the bare route learns its bodies from it (then serves them from memory); the app has
   * then answered each path once, as it has before a dashboard polls again, so the load measures
   * the answers a poll gets (the pass's own time is reported as `firstPassMs`).
   */
  async 'reads-serve'(a) {
    const kind = a.kind as 'app' | 'bare'
    const [from, to] = a.range as [string, string]
    const paths = Array.from({ length: a.clients as number }, (_, c) => `/usage/clients/${clientName(c)}/daily?from=${from}&to=${to}`)
    const service = await startService(a.path as string, NOW_MS, a.databaseUrl as string | undefined)
    let close = () => service.close()
    let port = service.port
    const bodies = new Map<string, string>()
    let bodyBytes = 0
    const passStarted = process.hrtime.bigint()
    for (const path of paths) {
      const r = await service.inject(path)
      if (r.statusCode !== 200) throw new Error(`${path} answered ${r.statusCode}`)
      bodies.set(path.slice(0, path.indexOf('?')), r.body)
      bodyBytes += r.body.length
    }
    const firstPassMs = elapsedMs(passStarted)
    if (kind === 'bare') {
      await service.close()
      // The app's own server options (request ids, logger), so the difference is the route's own work.
      const bare = Fastify(serverOptions(pino({ level: 'silent' })))
      bare.get('/usage/clients/:id/daily', (request, reply) => {
        reply.type('application/json; charset=utf-8').send(bodies.get(request.url.slice(0, request.url.indexOf('?'))))
      })
      await bare.listen({ host: '127.0.0.1', port: 0 })
      port = (bare.server.address() as { port: number }).port
      close = () => bare.close()
    }
    const cpuBefore = process.cpuUsage()
    const load = await profiled(`reads-${kind}`, () =>
      runLoad({ url: `http://127.0.0.1:${port}`, paths, connections: a.connections as number, durationS: a.durationS as number, headers: a.headers as Record<string, string> | undefined }),
    )
    const cpu = process.cpuUsage(cpuBefore)
    await close()
    return {
      kind,
      ...load,
      meanBodyBytes: Math.round(bodyBytes / paths.length),
      firstPassMs,
      // CPU time of the serving process per request: less sensitive to a loaded machine than req/s.
      serverCpuMicrosPerRequest: Math.round((cpu.user + cpu.system) / load.requests!),
    }
  },
}

/**
 * The PostgreSQL part (bench/run.ts, benchPostgres): the same measurements with DATABASE_URL, each
 * scenario on a database of the part's throwaway server (`url`). Ingestion and reads reuse the
 * scenarios above with `databaseUrl`.
 */
const postgresScenarios: typeof scenarios = {
  /** The batch day's records posted to the service with DATABASE_URL, as sqlite-setup posts them. */
  async 'pg-setup'(a) {
    const url = a.url as string
    const service = await startService(a.path as string, NOW_MS, url)
    const next = bodiesFrom(generateDay(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'day', a.order as DataOrder), a.perRequest as number)
    const started = process.hrtime.bigint()
    const posted = await postBodies(service.port, next, a.concurrency as number)
    const ms = elapsedMs(started)
    await service.close()
    const vacuumMs = await vacuumAnalyze(url, 'usage_events')
    return { ...posted, ms, eventsPerSecond: (posted.accepted / ms) * 1000, vacuumMs }
  },

  /**
   * The read half of the limit: the PostgreSQL source's own grouped statement (BY_CLIENT_SQL, what
   * the batch day reads), through the same server-side cursor and batch size, consumed to the end.
   */
  async 'pg-read'(a) {
    const db = await openPostgres({ url: a.url as string, migrate: false, poolSize: 1 })
    const { startMs, endMs } = dayWindow(a.date, TIME_ZONE)
    const started = process.hrtime.bigint()
    let rows = 0
    let records = 0n
    for await (const batch of readWithCursor<{ records: string }>(db.$client, PG_BY_CLIENT_SQL, [startMs, endMs])) {
      for (const r of batch) {
        rows += 1
        records += BigInt(r.records)
      }
    }
    const ms = elapsedMs(started)
    await db.$client.end()
    return { ms, rows, records: Number(records) }
  },

  /** The product's batch day with DATABASE_URL: the PostgreSQL store and raw source, a first run of the day. */
  async 'pg-batch'(a) {
    const store = await openPostgresStore({ url: a.url as string, clock: systemClock })
    const source = createPostgresSource({ store, clock: systemClock })
    const out = await batchDay(source, store, a.date)
    await source.close()
    await store.close()
    return out
  },

  /**
   * The write half of the limit: the summary rows a batch wrote (read from its database first,
   * untimed), inserted into an empty migrated database (same schema and indexes) by plain INSERTs fed
   * with one array per column, 5,000 rows a statement, all in one transaction.
   */
  async 'pg-write'(a) {
    const from = await openPostgres({ url: a.rowsFrom as string, migrate: false, poolSize: 1 })
    const tables: Array<{ table: string; columns: Awaited<ReturnType<typeof tableColumns>>; rows: unknown[][] }> = []
    for (const table of SUMMARY_TABLES) {
      const columns = await tableColumns(from.$client, table)
      const { rows } = await from.$client.query<unknown[]>({
        text: `SELECT ${columns.map((c) => `"${c.name}"`).join(', ')} FROM ${table} WHERE usage_date = $1`,
        values: [a.date],
        rowMode: 'array',
      })
      tables.push({ table, columns, rows })
    }
    await from.$client.end()
    const to = await openPostgres({ url: a.url as string, migrate: false, poolSize: 1 })
    const client = await to.$client.connect()
    const started = process.hrtime.bigint()
    let rows = 0
    await profiled('pg-write-limit', async () => {
      await client.query('BEGIN')
      for (const t of tables) rows += await insertRows(client, t.table, t.columns, t.rows)
      await client.query('COMMIT')
    })
    const ms = elapsedMs(started)
    client.release()
    await to.$client.end()
    return { ms, rows }
  },

  /**
   * The limit for ingestion: the same records through the very statement and parameters
   * POST /usage/events runs with DATABASE_URL (sources/postgres.ts), one statement (its own
   * transaction) per `perRequest`, straight from memory, `concurrency` statements in flight on as many
   * connections as the HTTP side has requests in flight: the server works on two statements at once
   * there, so a one-at-a-time loop would be no limit.
   */
  async 'pg-ingest-direct'(a) {
    const concurrency = a.concurrency as number
    const db = await openPostgres({ url: a.url as string, migrate: false, poolSize: concurrency })
    const events = [...generateDay(a.shape as Shape, dayWindow(a.date, TIME_ZONE), 'ing', 'time')]
    const perTransaction = a.perRequest as number
    // Connections opened before the clock starts, as the service's pool is warm when requests come.
    await Promise.all(Array.from({ length: concurrency }, async () => (await db.$client.connect()).release()))
    let next = 0
    let accepted = 0
    const started = process.hrtime.bigint()
    await profiled('pg-ingest-direct', () =>
      Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = next; i < events.length; i = next) {
            next += perTransaction
            const { rowCount } = await db.$client.query(PG_INGEST_SQL, pgIngestParameters(events.slice(i, i + perTransaction), NOW_MS))
            accepted += rowCount ?? 0
          }
        }),
      ),
    )
    const ms = elapsedMs(started)
    await db.$client.end()
    return { ms, accepted, eventsPerSecond: (accepted / ms) * 1000 }
  },

  /** The reads' client_daily_usage rows, copied from the SQLite file reads-setup filled, so both stores serve the same figures. */
  async 'pg-reads-setup'(a) {
    const db = await openPostgres({ url: a.url as string, migrate: false, poolSize: 1 })
    const columns = await tableColumns(db.$client, 'client_daily_usage')
    const sqlite = new Database(a.from as string, { readonly: true, fileMustExist: true })
    const rows = sqlite.prepare(`SELECT ${columns.map((c) => c.name).join(', ')} FROM client_daily_usage`).raw(true).safeIntegers(true).all() as unknown[][]
    sqlite.close()
    const started = process.hrtime.bigint()
    const client = await db.$client.connect()
    await client.query('BEGIN')
    const inserted = await insertRows(client, 'client_daily_usage', columns, rows.map((r) => r.map((v) => (typeof v === 'bigint' ? v.toString() : v))))
    await client.query('COMMIT')
    client.release()
    const ms = elapsedMs(started)
    await db.$client.end()
    await vacuumAnalyze(a.url as string, 'client_daily_usage')
    return { rows: inserted, ms }
  },
}
Object.assign(scenarios, postgresScenarios)

/**
 * What autovacuum does soon after a bulk load (hint bits, the visibility map, planner statistics),
 * done at once so that it cannot start under a measurement, and both sides of a figure read the same table.
 */
async function vacuumAnalyze(url: string, table: (typeof SUMMARY_TABLES)[number] | 'usage_events'): Promise<number> {
  const db = await openPostgres({ url, migrate: false, poolSize: 1 })
  const started = process.hrtime.bigint()
  await db.$client.query(`VACUUM (ANALYZE) ${table}`)
  const ms = elapsedMs(started)
  await db.$client.end()
  return ms
}

/** autocannon in its own process, so the load generator does not share the server's event loop. */
async function runLoad(args: { url: string; paths: string[]; connections: number; durationS: number; headers?: Record<string, string> }): Promise<Record<string, number>> {
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
