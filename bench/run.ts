// npm run bench [-- --events N --clients N --users N --models N --shapes few,many --orders time,shuffled --rounds N
//                   --influx-events N --ingest-events N --reads-duration S --cpu-prof-dir DIR --quick
//                   --only batch|influx|ingest|reads|postgres --pg-orders time,shuffled --skip-5x --out FILE]
// Every figure is measured against a limit taken in the same run on the same machine, and reported
// as a ratio: the machine is shared and loaded, so absolute numbers alone would mean little. Each
// figure names the data it ran on: how many records, their shape (groups per client) and the order
// they sit in the table (as producers post them, or shuffled), because the limit depends on both.
// Exits 0 when everything ran (a missed target is reported, not a failure); non-zero on an error.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH_DIR, ROOT_DIR, runScenario, type ScenarioResult } from './lib/child.js'
import type { DataOrder, Shape } from './lib/data.js'
import { influxdPath, startInfluxd } from './lib/influxd.js'
import { postgresUnavailable, startBenchPostgres, type BenchPostgres } from './lib/pg-server.js'

const { values: flags } = parseArgs({
  options: {
    events: { type: 'string' },
    clients: { type: 'string' },
    users: { type: 'string' },
    models: { type: 'string' },
    shapes: { type: 'string' },
    orders: { type: 'string' },
    rounds: { type: 'string' },
    seed: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'skip-5x': { type: 'boolean', default: false },
    'ingest-events': { type: 'string' },
    'influx-events': { type: 'string' },
    'reads-duration': { type: 'string' },
    'cpu-prof-dir': { type: 'string' },
    out: { type: 'string' },
    'pg-orders': { type: 'string' },
  },
})

const quick = flags.quick === true
// Scenarios inherit it and profile their measured section (bench/lib/child.ts, profiled).
if (flags['cpu-prof-dir']) process.env.BENCH_CPU_PROFILE_DIR = resolve(flags['cpu-prof-dir'])
const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v.replace(/[_,]/g, '')))
const events = num(flags.events, quick ? 5_000 : 1_000_000)
const clients = num(flags.clients, quick ? 20 : 500)
const seed = num(flags.seed, 20261120)
/**
 * The two shapes of a day: few user×model groups per client (one each: the day is a few hundred
 * groups, reading dominates and writing is negligible) and many (users × models per client: about
 * 200,000 groups at full size, so writing the summaries weighs as much as reading the records).
 */
const SHAPES = {
  few: { events, clients, users: 1, models: 1, seed },
  many: { events, clients, users: num(flags.users, quick ? 5 : 20), models: num(flags.models, quick ? 5 : 20), seed },
} satisfies Record<string, Shape>
type ShapeName = keyof typeof SHAPES
const shapeNames = (flags.shapes?.split(',') ?? ['few', 'many']) as ShapeName[]
const orders = (flags.orders?.split(',') ?? ['time', 'shuffled']) as DataOrder[]
for (const s of shapeNames) if (!(s in SHAPES)) throw new Error(`--shapes takes few and many (got ${s})`)
for (const o of orders) if (o !== 'time' && o !== 'shuffled') throw new Error(`--orders takes time and shuffled (got ${o})`)
/** Rounds of read, batch and write per case; each figure is the best of its rounds (the machine is shared). */
const rounds = num(flags.rounds, quick ? 1 : 3)
const SCALE = 5
/** The 5× day: the shape and order whose RSS growth is reported. */
const FIVE_X = { shape: 'many' as ShapeName, order: 'time' as DataOrder }
/** How producers post: requests of up to 5,000 records (docs/api.md), two in flight. */
const INGEST_PER_REQUEST = 5_000
const INGEST_CONCURRENCY = 2
/** InfluxDB loads points far slower than SQLite inserts rows: its size is set on its own. */
const influxEvents = num(flags['influx-events'], quick ? 5_000 : 200_000)
/** The service's defaults: INFLUXDB_AGGREGATION_MODE=per-client, INFLUXDB_AGGREGATION_BATCH_SIZE=5. */
const INFLUX_PER_CLIENT_CONCURRENCY = 5
const ingestEvents = num(flags['ingest-events'], quick ? 10_000 : 200_000)
const READS = { clients: quick ? 50 : 1_000, from: '2025-11-28', to: '2026-11-27', range: ['2026-10-01', '2026-10-31'] as [string, string] }
const READ_CONNECTIONS = 10
const readsDurationS = num(flags['reads-duration'], quick ? 1 : 10)
/** The benchmarked business day (24 h in Warsaw). */
const DAY = '2026-11-20'
const INGEST_DAY = '2026-11-21'
/** If loading N points into InfluxDB took longer than this, 5× N is skipped (it would take ~10 min). */
const MAX_INFLUX_LOAD_FOR_5X_MS = 110_000
/** Targets of issue 16. */
const BATCH_TARGET = 1.2
const INGEST_TARGET = 0.8
const READS_TARGET = 0.5
const READS_P99_BUDGET_MS = 10
const RSS_BUDGET_MB = 300

const only = flags.only
for (const o of only?.split(',') ?? []) {
  if (!['batch', 'influx', 'ingest', 'reads', 'postgres'].includes(o)) throw new Error(`--only takes batch, influx, ingest, reads or postgres (got ${o})`)
}
const wants = (part: string) => !only || only.split(',').includes(part)

interface Figure {
  id: string
  label: string
  /** The data the figure ran on: records, shape and order, in words. */
  data: string
  /** Batch figures: the shape of the day (few or many user×model groups per client) and the order its rows sit in. */
  shape?: ShapeName
  order?: DataOrder
  value: number
  unit: string
  limit: number | null
  limitLabel: string
  /** value / limit (for RSS: value / the budget). */
  ratio: number | null
  target: string
  met: boolean | null
  /** The 1-minute load average when the figure was taken: the machine is shared. */
  loadAverage: number
}

const figures: Figure[] = []
const notes: string[] = []
const failures: string[] = []
const raw: Record<string, unknown> = {}
const MB = 1024 * 1024

function figure(f: Omit<Figure, 'ratio' | 'loadAverage'> & { ratio?: number | null }) {
  const ratio = f.ratio !== undefined ? f.ratio : f.limit ? f.value / f.limit : null
  figures.push({ ...f, ratio, loadAverage: Math.round(loadavg()[0]! * 100) / 100 })
}

function log(message: string) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${loadavg()[0]!.toFixed(2)}] ${message}\n`)
}

/** Best (smallest `ms`) of some results. */
function best(results: ScenarioResult[]): ScenarioResult {
  return results.reduce((a, b) => ((b.ms as number) < (a.ms as number) ? b : a))
}

const count = (n: number) => n.toLocaleString('en-US')

function describeShape(name: ShapeName, shape: Shape): string {
  return name === 'few'
    ? `few groups (${count(shape.clients)} clients × 1 user × 1 model)`
    : `many groups (${count(shape.clients)} clients × ${shape.users} users × ${shape.models} models)`
}

function describeOrder(order: DataOrder): string {
  return order === 'time' ? 'rows in time order (as producers post them)' : 'rows in shuffled order'
}

/**
 * One case of the SQLite batch day: the day's records posted to the service over HTTP (requests of
 * 5,000) in the given order, then rounds of [grouped SELECT alone, full batch day, summary insert
 * alone], so both halves of the limit are measured right before and after each batch.
 */
async function measureBatchCase(dir: string, shapeName: ShapeName, order: DataOrder, n: number, caseRounds: number) {
  const shape = { ...SHAPES[shapeName], events: n }
  const tag = `${shapeName}/${order}/${n}`
  const path = join(dir, `batch-${shapeName}-${order}-${n}.db`)
  const copy = join(dir, 'batch-copy.db')
  log(`batch ${tag}: posting ${count(n)} events over HTTP, ${INGEST_PER_REQUEST}/request`)
  const setup = await runScenario('sqlite-setup', { path, shape, date: DAY, order, perRequest: INGEST_PER_REQUEST, concurrency: INGEST_CONCURRENCY })
  // Warm the page cache once, so neither side pays the first read from disk (not worth a process
  // start at --quick sizes, where the file was just written and is in the cache anyway).
  if (!quick) await runScenario('sqlite-read', { path, date: DAY })
  const reads: ScenarioResult[] = []
  const batches: ScenarioResult[] = []
  const writes: ScenarioResult[] = []
  for (let i = 0; i < caseRounds; i++) {
    log(`batch ${tag}: round ${i + 1}/${caseRounds}: grouped SELECT, batch day, summary insert`)
    reads.push(await runScenario('sqlite-read', { path, date: DAY }))
    batches.push(await runScenario('sqlite-batch', { path: copy, source: path, date: DAY }))
    writes.push(await runScenario('sqlite-write', { rowsFrom: copy, path: join(dir, 'write-limit.db'), date: DAY }))
  }
  rmSync(path, { force: true })
  for (const suffix of ['', '-wal', '-shm']) rmSync(copy + suffix, { force: true })
  const read = best(reads)
  const write = best(writes)
  const batch = best(batches)
  if (batch.summaries !== write.rows) throw new Error(`${tag}: the batch wrote ${batch.summaries} summary rows, the write limit inserted ${write.rows}`)
  if (batch.records !== read.records) throw new Error(`${tag}: the batch counted ${batch.records} records, the grouped SELECT ${read.records}`)
  return {
    shape,
    setup,
    read,
    write,
    batch,
    data: `${count(n)} events, ${describeShape(shapeName, shape)} = ${count(read.rows as number)} groups, ${count(write.rows as number)} summary rows; ${describeOrder(order)}`,
    rounds: { reads, batches, writes },
  }
}

type BatchCase = Awaited<ReturnType<typeof measureBatchCase>>

/** The least CPU time (user + system, all threads) of the rounds, ms. */
function leastCpu(results: ScenarioResult[]): number {
  return Math.min(...results.map((r) => r.cpuMs as number))
}

function batchTimeFigure(id: string, label: string, c: BatchCase, caseRounds: number, shape: ShapeName, order: DataOrder) {
  const limit = (c.read.ms as number) + (c.write.ms as number)
  // On a loaded machine wall time swings with the run queue; CPU time says whether the batch did more work.
  const cpu = { batch: leastCpu(c.rounds.batches), limit: leastCpu(c.rounds.reads) + leastCpu(c.rounds.writes) }
  figure({
    id,
    label,
    data: c.data,
    shape,
    order,
    value: c.batch.ms as number,
    unit: 'ms',
    limit,
    limitLabel:
      `read ${Math.round(c.read.ms as number)} ms (the grouped SELECT of sqlite-sql.ts, better-sqlite3) + write ${Math.round(c.write.ms as number)} ms ` +
      `(the same summary rows, plain INSERTs in one transaction), each the best of ${caseRounds} taken around the batches; ` +
      `CPU time: batch ${Math.round(cpu.batch)} ms vs ${Math.round(cpu.limit)} ms (${(cpu.batch / cpu.limit).toFixed(2)}×)`,
    target: `≤ ${BATCH_TARGET}×`,
    met: (c.batch.ms as number) <= BATCH_TARGET * limit,
  })
}

async function benchBatchSqlite(dir: string, baselineRss: number) {
  const cases: Record<string, BatchCase> = {}
  for (const shapeName of shapeNames) {
    for (const order of orders) {
      const c = await measureBatchCase(dir, shapeName, order, events, rounds)
      cases[`${shapeName}.${order}`] = c
      raw[`batch.${shapeName}.${order}`] = { setup: c.setup, rounds: c.rounds }
      batchTimeFigure(`batch.sqlite.${shapeName}.${order}.time`, `batch day, SQLite, ${shapeName} groups, ${order === 'time' ? 'time order' : 'shuffled'}`, c, rounds, shapeName, order)
      figure({
        id: `batch.sqlite.${shapeName}.${order}.rss`,
        label: `batch day, SQLite, ${shapeName} groups, ${order === 'time' ? 'time order' : 'shuffled'}: peak RSS of the batch process`,
        data: c.data,
        shape: shapeName,
        order,
        value: c.batch.maxRssBytes / MB,
        unit: 'MB',
        limit: RSS_BUDGET_MB,
        limitLabel: `budget ${RSS_BUDGET_MB} MB (bare process with the modules loaded: ${(baselineRss / MB).toFixed(0)} MB; grouped SELECT alone: ${(c.read.maxRssBytes / MB).toFixed(0)} MB)`,
        target: `< ${RSS_BUDGET_MB} MB`,
        met: c.batch.maxRssBytes < RSS_BUDGET_MB * MB,
      })
    }
  }
  const one = cases[`${FIVE_X.shape}.${FIVE_X.order}`]
  if (flags['skip-5x'] || !one) {
    notes.push(flags['skip-5x'] ? 'SQLite 5×: skipped (--skip-5x)' : `SQLite 5×: skipped (the ${FIVE_X.shape}/${FIVE_X.order} case did not run)`)
    return
  }
  const five = await measureBatchCase(dir, FIVE_X.shape, FIVE_X.order, events * SCALE, 1)
  raw[`batch.${FIVE_X.shape}.${FIVE_X.order}.5x`] = { setup: five.setup, rounds: five.rounds }
  batchTimeFigure(`batch.sqlite.5x.time`, `batch day, SQLite, ${SCALE}× the events, ${FIVE_X.shape} groups, time order`, five, 1, FIVE_X.shape, FIVE_X.order)
  growthFigures('sqlite', 'batch day, SQLite', `${five.data} vs ${one.data}`, one.batch, five.batch)
}

/** How a batch's peak RSS (target: < 25 % growth) and time grow from 1× to 5× the events. */
function growthFigures(id: string, name: string, data: string, one: ScenarioResult, five: ScenarioResult) {
  figure({
    id: `${id}.growth.batch.rss`,
    label: `${name}: peak RSS at ${SCALE}× vs 1×`,
    data,
    value: five.maxRssBytes / MB,
    unit: 'MB',
    limit: one.maxRssBytes / MB,
    limitLabel: 'batch peak RSS at 1×',
    target: 'growth < 25% (ratio < 1.25)',
    met: five.maxRssBytes < 1.25 * one.maxRssBytes,
  })
  figure({
    id: `${id}.growth.batch.time`,
    label: `${name}: time at ${SCALE}× vs 1×`,
    data,
    value: five.ms as number,
    unit: 'ms',
    limit: one.ms as number,
    limitLabel: 'batch time at 1×',
    target: `information (${SCALE}× the events)`,
    met: null,
  })
}

async function benchInflux(dir: string) {
  if (!influxdPath()) {
    notes.push('InfluxDB: skipped, influxd not installed (apt-get install influxdb)')
    return
  }
  const shape = SHAPES.many
  const sizes: Array<{ events: number; label: string }> = [{ events: influxEvents, label: '1×' }]
  /** InfluxDB points carry their own timestamps: the order they were written in does not matter. */
  const dataOf = (n: number, groups: unknown) => `${count(n)} points, ${describeShape('many', shape)} = ${count(groups as number)} groups`
  const perScale: Record<string, { raw: ScenarioResult; batch?: ScenarioResult; influxdPeak: number; load: ScenarioResult }> = {}
  for (let s = 0; s < sizes.length; s++) {
    const { events, label } = sizes[s]!
    const influxd = await startInfluxd()
    try {
      log(`InfluxDB ${label}: writing ${events} points`)
      const load = await runScenario('influx-load', { url: influxd.url, shape: { ...shape, events }, date: DAY })
      // At 5× one round and no warm-up: each grouped query there takes minutes.
      const first = s === 0
      if (!quick && first) await runScenario('influx-raw', { url: influxd.url, date: DAY })
      log(`InfluxDB ${label}: raw grouped query`)
      const rawQueries: ScenarioResult[] = []
      for (let i = 0; i < (quick || !first ? 1 : 2); i++) rawQueries.push(await runScenario('influx-raw', { url: influxd.url, date: DAY }))
      const rawQuery = best(rawQueries)
      log(`InfluxDB ${label}: per-client sequential queries`)
      const perClient = await runScenario('influx-perclient', { url: influxd.url, date: DAY })
      log(`InfluxDB ${label}: full batch day, per-client mode (${INFLUX_PER_CLIENT_CONCURRENCY} in flight, the service's default)`)
      const batch = await runScenario('influx-batch', { url: influxd.url, path: join(dir, `influx-${s}.db`), date: DAY, perClient: INFLUX_PER_CLIENT_CONCURRENCY })
      const name = `InfluxDB ${label}`
      const data = dataOf(events, rawQuery.rows)
      /** A time against the one grouped query: a ≤ 1.3× target, or information. */
      const vsRawQuery = (id: string, figureLabel: string, ms: number, target: 'batch' | 'information') =>
        figure({
          id,
          label: figureLabel,
          data,
          value: ms,
          unit: 'ms',
          limit: rawQuery.ms as number,
          limitLabel: 'one grouped InfluxQL query, chunked, consumed fully',
          target: target === 'batch' ? '≤ 1.3×' : 'information (the earlier system)',
          met: target === 'batch' ? ms <= 1.3 * (rawQuery.ms as number) : null,
        })
      let grouped: ScenarioResult | undefined
      if (first) {
        log(`InfluxDB ${label}: full batch day, grouped mode (one query)`)
        grouped = await runScenario('influx-batch', { url: influxd.url, path: join(dir, `influx-${s}-grouped.db`), date: DAY })
        if (!grouped.unavailable) {
          vsRawQuery('batch.influx.grouped.time', `${name}: full batch day, grouped mode (INFLUXDB_AGGREGATION_MODE=grouped)`, grouped.ms as number, 'batch')
        }
      }
      const influxdPeak = influxd.peakRssBytes()
      raw[`influx${label}`] = { load, rawQuery, perClient, batch, grouped, influxdPeakRssBytes: influxdPeak }
      perScale[label] = { raw: rawQuery, batch: batch.unavailable ? undefined : batch, influxdPeak, load }
      vsRawQuery(`batch.influx${label === '1×' ? '' : '.5x'}.perclient`, `${name}: per-client sequential queries (${perClient.queries})`, perClient.ms as number, 'information')
      if (batch.unavailable) {
        notes.push(`InfluxDB ${label} full batch day: ${batch.unavailable as string}; raw-query and per-client figures only, rerun after the merge`)
      } else {
        vsRawQuery(
          `batch.influx${label === '1×' ? '' : '.5x'}.time`,
          `${name}: full batch day, per-client mode (the default, ${INFLUX_PER_CLIENT_CONCURRENCY} in flight)`,
          batch.ms as number,
          'batch',
        )
        figure({
          id: `batch.influx${label === '1×' ? '' : '.5x'}.rss`,
          label: `${name}: peak RSS of the batch process`,
          data,
          value: batch.maxRssBytes / MB,
          unit: 'MB',
          limit: RSS_BUDGET_MB,
          limitLabel: `budget ${RSS_BUDGET_MB} MB`,
          target: `< ${RSS_BUDGET_MB} MB`,
          met: batch.maxRssBytes < RSS_BUDGET_MB * MB,
        })
      }
      figure({
        id: `influxd${label === '1×' ? '' : '.5x'}.rss`,
        label: `${name}: influxd peak RSS (VmHWM, load + queries)`,
        data,
        value: influxdPeak / MB,
        unit: 'MB',
        limit: null,
        limitLabel: 'information',
        target: 'information',
        met: null,
      })
    } finally {
      await influxd.stop()
    }
    if (s === 0 && !flags['skip-5x']) {
      if ((load(perScale) ?? 0) > MAX_INFLUX_LOAD_FOR_5X_MS && !quick) {
        notes.push(`InfluxDB 5×: skipped, loading ${influxEvents} points took ${Math.round(load(perScale)! / 1000)} s, so 5× would exceed ~10 minutes`)
      } else {
        sizes.push({ events: influxEvents * SCALE, label: '5×' })
      }
    } else if (s === 0) {
      notes.push('InfluxDB 5×: skipped (--skip-5x)')
    }
  }
  const one = perScale['1×']
  const five = perScale['5×']
  if (one && five) {
    figure({
      id: 'influx.growth.rawquery',
      label: `InfluxDB raw grouped query time at 5× vs 1×`,
      data: `${count(influxEvents * SCALE)} vs ${count(influxEvents)} points, ${describeShape('many', shape)}`,
      value: five.raw.ms as number,
      unit: 'ms',
      limit: one.raw.ms as number,
      limitLabel: 'same query at 1×',
      target: 'information (≈5× expected)',
      met: null,
    })
    if (one.batch && five.batch) {
      growthFigures('influx', 'InfluxDB batch', `${count(influxEvents * SCALE)} vs ${count(influxEvents)} points, ${describeShape('many', shape)}`, one.batch, five.batch)
    } else {
      notes.push('InfluxDB 5× batch RSS growth: not measured (source not available on this branch)')
    }
  }

  function load(p: typeof perScale): number | undefined {
    return p['1×']?.load.ms as number | undefined
  }
}

/**
 * Ingestion over HTTP against a direct insert loop of the same records, in rounds that alternate the
 * two (each on a fresh file); the best of each.
 */
async function benchIngest(dir: string) {
  const shape = { ...SHAPES.many, events: ingestEvents, seed: seed + 1 }
  const data = `${count(ingestEvents)} events, ${describeShape('many', shape)}, posted in time order, ${count(INGEST_PER_REQUEST)} per request, ${INGEST_CONCURRENCY} requests in flight`
  const directs: ScenarioResult[] = []
  const https: ScenarioResult[] = []
  for (let i = 0; i < rounds; i++) {
    log(`ingestion round ${i + 1}/${rounds}: direct insert loop, then POST /usage/events over HTTP, ${count(ingestEvents)} events`)
    directs.push(await runScenario('ingest-direct', { path: join(dir, `ingest-direct-${i}.db`), shape, date: INGEST_DAY, perRequest: INGEST_PER_REQUEST }))
    https.push(await runScenario('ingest-http', { path: join(dir, `ingest-http-${i}.db`), shape, date: INGEST_DAY, perRequest: INGEST_PER_REQUEST, concurrency: INGEST_CONCURRENCY }))
    for (const f of [`ingest-direct-${i}.db`, `ingest-http-${i}.db`]) for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, f + suffix), { force: true })
  }
  raw.ingest = { directs, https }
  log(`ingestion CPU time (min of rounds): over HTTP ${Math.round(Math.min(...https.map((r) => r.cpuMs as number)))} ms, direct ${Math.round(Math.min(...directs.map((r) => r.cpuMs as number)))} ms`)
  const direct = best(directs)
  const http = best(https)
  if (http.accepted !== direct.accepted || http.accepted !== ingestEvents) {
    throw new Error(`ingestion accepted ${http.accepted} over HTTP but ${direct.accepted} directly, of ${ingestEvents}`)
  }
  figure({
    id: 'ingest.rate',
    label: `ingestion: POST /usage/events over HTTP`,
    data,
    value: http.eventsPerSecond as number,
    unit: 'events/s',
    limit: direct.eventsPerSecond as number,
    limitLabel: `direct better-sqlite3 insert loop of the same records, the same INSERT, schema and indexes, one transaction per ${count(INGEST_PER_REQUEST)}; best of ${rounds} each`,
    target: `≥ ${INGEST_TARGET}×`,
    met: (http.eventsPerSecond as number) >= INGEST_TARGET * (direct.eventsPerSecond as number),
  })
}

async function benchReads(dir: string) {
  const path = join(dir, 'reads.db')
  log(`reads: ${READS.clients} clients × 365 days of client_daily_usage`)
  raw.readsSetup = await runScenario('reads-setup', { path, clients: READS.clients, from: READS.from, date: READS.to })
  const common = { path, clients: READS.clients, range: READS.range, connections: READ_CONNECTIONS, durationS: readsDurationS, date: READS.to }
  log(`reads: bare route answering the same bodies, ${readsDurationS} s at ${READ_CONNECTIONS} connections`)
  const bare = await runScenario('reads-serve', { kind: 'bare', ...common })
  log(`reads: GET /usage/clients/{id}/daily (31 days), ${readsDurationS} s at ${READ_CONNECTIONS} connections`)
  const app = await runScenario('reads-serve', { kind: 'app', ...common })
  raw.reads = { bare, app }
  log(`reads: server CPU per request: app ${app.serverCpuMicrosPerRequest} µs, bare route ${bare.serverCpuMicrosPerRequest} µs; the app's first pass over the paths took ${app.firstPassMs} ms`)
  readsFigures({ id: 'reads', store: '', database: "the store's write generation", bare, app })
}

/**
 * The PostgreSQL part: where DATABASE_URL puts the raw records and the summaries. The same three
 * figures as the SQLite parts, each against its own limit on the same throwaway PostgreSQL 15, and
 * beside the SQLite figure of the same data when this run measured it.
 */
const pgOrders = (flags['pg-orders']?.split(',') ?? ['time']) as DataOrder[]
for (const o of pgOrders) if (o !== 'time' && o !== 'shuffled') throw new Error(`--pg-orders takes time and shuffled (got ${o})`)

async function benchPostgres(dir: string) {
  // Under REQUIRE_POSTGRES=1 (CI) a missing server throws here: the part fails, and so does the run.
  const unavailable = postgresUnavailable()
  if (unavailable) {
    notes.push(`PostgreSQL: skipped, ${unavailable}`)
    return
  }
  log('PostgreSQL: starting a throwaway PostgreSQL 15 on loopback')
  const pgServer = await startBenchPostgres()
  try {
    raw.postgresServer = (await pgServer.server.admin('SELECT version()')).rows[0]
    for (const shapeName of shapeNames) {
      for (const order of pgOrders) await benchPostgresBatchCase(pgServer, dir, shapeName, order)
    }
    await benchPostgresIngest(pgServer, dir)
    await benchPostgresReads(pgServer, dir)
  } finally {
    await pgServer.destroy()
  }
}

/** A PostgreSQL figure beside the SQLite one of the same data, when this run measured it. */
function besideSqlite(id: string, label: string, data: string, value: number, unit: string, sqliteId: string) {
  const sqlite = figures.find((f) => f.id === sqliteId)
  if (!sqlite) return
  figure({ id, label, data, value, unit, limit: sqlite.value, limitLabel: `SQLite, the same data in this run (${sqlite.label})`, target: 'information', met: null })
}

/**
 * One case of the PostgreSQL batch day: the day posted to the service with DATABASE_URL over HTTP
 * (as the SQLite case), vacuumed and analysed (autovacuum's work, done before anything is measured),
 * then rounds on a fresh copy of that database: the grouped SELECT alone, the batch day, and the
 * summary insert alone into an empty database.
 */
async function benchPostgresBatchCase(pgServer: BenchPostgres, dir: string, shapeName: ShapeName, order: DataOrder) {
  const shape = SHAPES[shapeName]
  const tag = `postgres ${shapeName}/${order}/${events}`
  const loaded = `pg_day_${shapeName}_${order}`
  log(`batch ${tag}: posting ${count(events)} events over HTTP (DATABASE_URL), ${INGEST_PER_REQUEST}/request`)
  const setup = await runScenario('pg-setup', {
    url: await pgServer.create(loaded),
    path: join(dir, 'unused.db'),
    shape,
    date: DAY,
    order,
    perRequest: INGEST_PER_REQUEST,
    concurrency: INGEST_CONCURRENCY,
  })
  const reads: ScenarioResult[] = []
  const batches: ScenarioResult[] = []
  const writes: ScenarioResult[] = []
  for (let i = 0; i < rounds; i++) {
    log(`batch ${tag}: round ${i + 1}/${rounds}: grouped SELECT, batch day, summary insert`)
    const copy = await pgServer.create('pg_day_copy', loaded)
    reads.push(await runScenario('pg-read', { url: copy, date: DAY }))
    batches.push(await runScenario('pg-batch', { url: copy, date: DAY }))
    writes.push(await runScenario('pg-write', { rowsFrom: copy, url: await pgServer.create('pg_write_limit'), date: DAY }))
    await pgServer.drop('pg_write_limit')
    await pgServer.drop('pg_day_copy')
  }
  await pgServer.drop(loaded)
  raw[`postgres.batch.${shapeName}.${order}`] = { setup, rounds: { reads, batches, writes } }
  const read = best(reads)
  const write = best(writes)
  const batch = best(batches)
  if (batch.summaries !== write.rows) throw new Error(`${tag}: the batch wrote ${batch.summaries} summary rows, the write limit inserted ${write.rows}`)
  if (batch.records !== read.records || batch.records !== events) {
    throw new Error(`${tag}: the batch counted ${batch.records} records, the grouped SELECT ${read.records}, of ${events} posted`)
  }
  const data = `${count(events)} events, ${describeShape(shapeName, shape)} = ${count(read.rows as number)} groups, ${count(write.rows as number)} summary rows; ${describeOrder(order)}`
  const name = `batch day, PostgreSQL, ${shapeName} groups, ${order === 'time' ? 'time order' : 'shuffled'}`
  const limit = (read.ms as number) + (write.ms as number)
  figure({
    id: `batch.postgres.${shapeName}.${order}.time`,
    label: name,
    data,
    shape: shapeName,
    order,
    value: batch.ms as number,
    unit: 'ms',
    limit,
    limitLabel:
      `read ${Math.round(read.ms as number)} ms (BY_CLIENT_SQL of sources/postgres.ts through the store's server-side cursor) + write ${Math.round(write.ms as number)} ms ` +
      `(the same summary rows, plain INSERTs of one array per column in one transaction), each the best of ${rounds} taken around the batches`,
    target: `≤ ${BATCH_TARGET}×`,
    met: (batch.ms as number) <= BATCH_TARGET * limit,
  })
  figure({
    id: `batch.postgres.${shapeName}.${order}.rss`,
    label: `${name}: peak RSS of the batch process`,
    data,
    shape: shapeName,
    order,
    value: batch.maxRssBytes / MB,
    unit: 'MB',
    limit: RSS_BUDGET_MB,
    limitLabel: `budget ${RSS_BUDGET_MB} MB (grouped SELECT alone: ${(read.maxRssBytes / MB).toFixed(0)} MB; the server's own memory not counted)`,
    target: `< ${RSS_BUDGET_MB} MB`,
    met: batch.maxRssBytes < RSS_BUDGET_MB * MB,
  })
  besideSqlite(`batch.postgres.${shapeName}.${order}.vs-sqlite`, `${name}: beside SQLite`, data, batch.ms as number, 'ms', `batch.sqlite.${shapeName}.${order}.time`)
}

/** Ingestion with DATABASE_URL over HTTP against a direct loop of the store's own INSERT, alternating, each on a fresh database. */
async function benchPostgresIngest(pgServer: BenchPostgres, dir: string) {
  const shape = { ...SHAPES.many, events: ingestEvents, seed: seed + 1 }
  const data = `${count(ingestEvents)} events, ${describeShape('many', shape)}, posted in time order, ${count(INGEST_PER_REQUEST)} per request, ${INGEST_CONCURRENCY} requests in flight`
  const directs: ScenarioResult[] = []
  const https: ScenarioResult[] = []
  for (let i = 0; i < rounds; i++) {
    log(`PostgreSQL ingestion round ${i + 1}/${rounds}: direct insert loop, then POST /usage/events over HTTP, ${count(ingestEvents)} events`)
    directs.push(
      await runScenario('pg-ingest-direct', { url: await pgServer.create('pg_ingest'), shape, date: INGEST_DAY, perRequest: INGEST_PER_REQUEST, concurrency: INGEST_CONCURRENCY }),
    )
    https.push(
      await runScenario('ingest-http', {
        databaseUrl: await pgServer.create('pg_ingest'),
        path: join(dir, 'unused.db'),
        shape,
        date: INGEST_DAY,
        perRequest: INGEST_PER_REQUEST,
        concurrency: INGEST_CONCURRENCY,
      }),
    )
  }
  await pgServer.drop('pg_ingest')
  raw['postgres.ingest'] = { directs, https }
  const direct = best(directs)
  const http = best(https)
  if (http.accepted !== direct.accepted || http.accepted !== ingestEvents) {
    throw new Error(`PostgreSQL ingestion accepted ${http.accepted} over HTTP but ${direct.accepted} directly, of ${ingestEvents}`)
  }
  const label = 'ingestion, PostgreSQL: POST /usage/events over HTTP'
  figure({
    id: 'ingest.postgres.rate',
    label,
    data,
    value: http.eventsPerSecond as number,
    unit: 'events/s',
    limit: direct.eventsPerSecond as number,
    limitLabel:
      `direct pg loop of the same records: the route's INSERT … SELECT FROM unnest() alone (db/postgres/raw-events.ts; the route runs it in one transaction after its duplicate, conflict and void checks), same schema and indexes, ` +
      `one statement (its own transaction) per ${count(INGEST_PER_REQUEST)}, ${INGEST_CONCURRENCY} in flight on ${INGEST_CONCURRENCY} connections as over HTTP; best of ${rounds} each`,
    target: `≥ ${INGEST_TARGET}×`,
    met: (http.eventsPerSecond as number) >= INGEST_TARGET * (direct.eventsPerSecond as number),
  })
  besideSqlite('ingest.postgres.vs-sqlite', `${label}: beside SQLite`, data, http.eventsPerSecond as number, 'events/s', 'ingest.rate')
}

/** The reads figure with DATABASE_URL: the SQLite part's rows copied into PostgreSQL, the same scenario with the store switched. */
async function benchPostgresReads(pgServer: BenchPostgres, dir: string) {
  const path = join(dir, 'pg-reads.db')
  log(`PostgreSQL reads: ${READS.clients} clients × 365 days of client_daily_usage`)
  await runScenario('reads-setup', { path, clients: READS.clients, from: READS.from, date: READS.to })
  const databaseUrl = await pgServer.create('pg_reads')
  raw['postgres.readsSetup'] = await runScenario('pg-reads-setup', { url: databaseUrl, from: path, date: READS.to })
  const common = { path, databaseUrl, clients: READS.clients, range: READS.range, connections: READ_CONNECTIONS, durationS: readsDurationS, date: READS.to }
  log(`PostgreSQL reads: bare route answering the same bodies, ${readsDurationS} s at ${READ_CONNECTIONS} connections`)
  const bare = await runScenario('reads-serve', { kind: 'bare', ...common })
  log(`PostgreSQL reads: GET /usage/clients/{id}/daily (31 days), ${readsDurationS} s at ${READ_CONNECTIONS} connections`)
  const app = await runScenario('reads-serve', { kind: 'app', ...common })
  await pgServer.drop('pg_reads')
  raw['postgres.reads'] = { bare, app }
  const { label, data } = readsFigures({ id: 'reads.postgres', store: ' in PostgreSQL', database: "the database's write generation (one primary-key lookup)", bare, app })
  besideSqlite('reads.postgres.vs-sqlite', `${label}: beside SQLite`, data, app.requestsPerSecond as number, 'req/s', 'reads.rps')
}

/** The two reads figures (req/s against the bare route, p99 against its budget) of one store. */
function readsFigures(o: { id: string; store: string; database: string; bare: ScenarioResult; app: ScenarioResult }) {
  const { bare, app } = o
  for (const r of [bare, app]) {
    if ((r.non2xx as number) > 0 || (r.errors as number) > 0) throw new Error(`${o.id} (${r.kind}) answered ${r.non2xx} non-2xx and ${r.errors} errors`)
  }
  const data =
    `${count(READS.clients)} clients × 365 days of client_daily_usage${o.store}; each request one client's 31 days (${READS.range.join('..')}), cycling through the clients; bodies ~${count(bare.meanBodyBytes as number)} bytes; ` +
    `each path requested once before the load and no writes during it, so the app answers from its answer cache, validated against ${o.database} on every request (docs/api.md#conditional-requests)`
  const label = `reads${o.store ? ', PostgreSQL' : ''}: GET /usage/clients/{id}/daily, ${READ_CONNECTIONS} connections`
  figure({
    id: `${o.id}.rps`,
    label,
    data,
    value: app.requestsPerSecond as number,
    unit: 'req/s',
    limit: bare.requestsPerSecond as number,
    limitLabel: 'a bare Fastify route answering the same bodies from memory, same server options',
    target: `≥ ${READS_TARGET}×`,
    met: (app.requestsPerSecond as number) >= READS_TARGET * (bare.requestsPerSecond as number),
  })
  figure({
    id: `${o.id}.p99`,
    label: `reads${o.store ? ', PostgreSQL' : ''}: p99 latency (p50 ${app.p50Ms} ms; bare route p50 ${bare.p50Ms} ms, p99 ${bare.p99Ms} ms)`,
    data,
    value: app.p99Ms as number,
    unit: 'ms',
    limit: READS_P99_BUDGET_MS,
    limitLabel: `budget ${READS_P99_BUDGET_MS} ms`,
    target: `< ${READS_P99_BUDGET_MS} ms`,
    met: (app.p99Ms as number) < READS_P99_BUDGET_MS,
  })
  return { label, data }
}

function formatValue(v: number, unit: string): string {
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2
  return `${v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })} ${unit}`
}

export function markdownTable(list: Figure[]): string {
  const lines = ['| figure | data | value | limit | ratio | target | met | load |', '|---|---|---|---|---|---|---|---|']
  for (const f of list) {
    const limit = f.limit === null ? f.limitLabel : `${formatValue(f.limit, f.unit)} (${f.limitLabel})`
    const met = f.met === null ? '–' : f.met ? 'met' : '**missed**'
    lines.push(`| ${f.label} | ${f.data} | ${formatValue(f.value, f.unit)} | ${limit} | ${f.ratio === null ? '–' : f.ratio.toFixed(2)} | ${f.target} | ${met} | ${f.loadAverage.toFixed(1)} |`)
  }
  return lines.join('\n')
}

const README = join(BENCH_DIR, 'README.md')
const FIGURES_BEGIN = '<!-- figures:begin (written by a full `npm run bench`) -->'
const FIGURES_END = '<!-- figures:end -->'

/** Replaces the figures section of bench/README.md with this run's: machine, load, the table, notes. */
function writeReadmeFigures(results: { date: string; node: string; cores: number; cpuModel: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[]; durationS: number }) {
  const text = readFileSync(README, 'utf8')
  const begin = text.indexOf(FIGURES_BEGIN)
  const end = text.indexOf(FIGURES_END)
  if (begin < 0 || end < begin) throw new Error(`${README}: the figures markers are missing`)
  const section = [
    FIGURES_BEGIN,
    '',
    `Full run (\`npm run bench\`) of ${results.date.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(results.durationS / 60)} min; Node ${results.node}, ` +
      `${results.cores} cores (${results.cpuModel}); load average ${results.loadAverageAtStart[0]} at the start, ${results.loadAverageAtEnd[0]} at the end ` +
      '(each figure carries the load when it was taken).',
    '',
    markdownTable(figures),
    '',
    ...notes.map((n) => `- note: ${n}`),
    ...failures.map((f) => `- FAILED: ${f}`),
    ...(notes.length + failures.length > 0 ? [''] : []),
    FIGURES_END,
  ].join('\n')
  writeFileSync(README, text.slice(0, begin) + section + text.slice(end + FIGURES_END.length))
}

async function main() {
  const started = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'usage-bench-'))
  const machine = {
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemoryBytes: totalmem(),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  }
  // The product and the scenarios run compiled, by plain Node, as the service ships (bench/lib/child.ts).
  execFileSync(process.execPath, [join(ROOT_DIR, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.bench.json'], { cwd: ROOT_DIR, stdio: 'inherit' })
  log(`machine: ${machine.cores} cores, ${(machine.totalMemoryBytes / 1024 ** 3).toFixed(1)} GiB, load ${machine.loadAverageAtStart.join(' ')}; node ${machine.node}`)
  try {
    const baseline = await runScenario('baseline', { date: DAY })
    raw.baselineRssBytes = baseline.maxRssBytes
    // A part that fails is reported and the others still run; the exit code says it failed.
    const parts: Array<[string, () => Promise<void>]> = [
      ['batch', () => benchBatchSqlite(dir, baseline.maxRssBytes)],
      ['influx', () => benchInflux(dir)],
      ['ingest', () => benchIngest(dir)],
      ['reads', () => benchReads(dir)],
      ['postgres', () => benchPostgres(dir)],
    ]
    for (const [part, run] of parts) {
      if (!wants(part)) continue
      try {
        await run()
      } catch (error) {
        failures.push(`${part}: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`)
        log(`${part} failed: ${(error as Error).stack ?? String(error)}`)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const results = {
    ...machine,
    loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    durationS: Math.round((Date.now() - started) / 1000),
    quick,
    sizes: {
      batchDay: DAY,
      events,
      shapes: Object.fromEntries(shapeNames.map((n) => [n, SHAPES[n]])),
      orders,
      rounds,
      scale5x: { ...FIVE_X, events: events * SCALE },
      influxEvents,
      influxScale: SCALE,
      ingestEvents,
      ingestPerRequest: INGEST_PER_REQUEST,
      ingestConcurrency: INGEST_CONCURRENCY,
      readsClients: READS.clients,
      readsDays: 365,
      readsRange: READS.range,
      readConnections: READ_CONNECTIONS,
      readsDurationS,
      postgresOrders: pgOrders,
    },
    rssMethod: 'process.resourceUsage().maxRSS of a dedicated child process per scenario (node dist/bench/scenario.js: the bench and the product compiled, no TypeScript loader)',
    figures,
    notes,
    failures,
    raw,
  }
  const out = flags.out ?? join(BENCH_DIR, 'results.json')
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
  // A full run at the default sizes is the one the docs quote: its table replaces theirs.
  const fullRun = !quick && !only && !flags.out && process.argv.slice(2).length === 0
  if (fullRun) writeReadmeFigures(results)
  process.stdout.write(`\n${markdownTable(figures)}\n\n`)
  for (const n of notes) process.stdout.write(`note: ${n}\n`)
  const missed = figures.filter((f) => f.met === false)
  for (const f of failures) process.stdout.write(`FAILED: ${f}\n`)
  process.stdout.write(`\n${figures.filter((f) => f.met === true).length} targets met, ${missed.length} missed; results in ${out}\n`)
  if (failures.length > 0) process.exit(1)
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`)
  process.exit(1)
})
