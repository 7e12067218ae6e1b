// npm run bench [-- --events N --clients N --users N --models N --influx-events N --quick --only batch|influx|ingest|reads --skip-5x]
// Every figure is measured against a limit taken in the same run on the same machine, and reported
// as a ratio: the machine is shared and loaded, so absolute numbers alone would mean little.
// Exits 0 when everything ran (a missed target is reported, not a failure); non-zero on an error.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BENCH_DIR, runScenario, type ScenarioResult } from './lib/child.js'
import type { Shape } from './lib/data.js'
import { influxdPath, startInfluxd } from './lib/influxd.js'

const { values: flags } = parseArgs({
  options: {
    events: { type: 'string' },
    clients: { type: 'string' },
    users: { type: 'string' },
    models: { type: 'string' },
    seed: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'skip-5x': { type: 'boolean', default: false },
    'ingest-events': { type: 'string' },
    'influx-events': { type: 'string' },
    'reads-duration': { type: 'string' },
    out: { type: 'string' },
  },
})

const quick = flags.quick === true
const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v.replace(/[_,]/g, '')))
const shape: Shape = {
  events: num(flags.events, quick ? 5_000 : 1_000_000),
  clients: num(flags.clients, quick ? 20 : 500),
  users: num(flags.users, quick ? 5 : 20),
  models: num(flags.models, quick ? 5 : 20),
  seed: num(flags.seed, 20261120),
}
const SCALE = 5
/** InfluxDB loads points far slower than SQLite inserts rows: its size can be set on its own. */
const influxEvents = num(flags['influx-events'], shape.events)
/** The service's defaults: INFLUXDB_AGGREGATION_MODE=per-client, INFLUXDB_AGGREGATION_BATCH_SIZE=5. */
const INFLUX_PER_CLIENT_CONCURRENCY = 5
const ingestEvents = num(flags['ingest-events'], quick ? 5_000 : Math.min(shape.events, 200_000))
const INGEST_PER_REQUEST = 1_000
const INGEST_CONCURRENCY = 2
const READS = { clients: quick ? 50 : 1_000, from: '2025-11-28', to: '2026-11-27', range: ['2026-10-01', '2026-10-31'] as [string, string] }
const READ_CONNECTIONS = 10
const readsDurationS = num(flags['reads-duration'], quick ? 1 : 10)
/** The benchmarked business day (24 h in Warsaw). */
const DAY = '2026-11-20'
const INGEST_DAY = '2026-11-21'
/** If loading N points into InfluxDB took longer than this, 5× N is skipped (it would take ~10 min). */
const MAX_INFLUX_LOAD_FOR_5X_MS = 110_000

const only = flags.only
for (const o of only?.split(',') ?? []) {
  if (!['batch', 'influx', 'ingest', 'reads'].includes(o)) throw new Error(`--only takes batch, influx, ingest or reads (got ${o})`)
}
const wants = (part: string) => !only || only.split(',').includes(part)

interface Figure {
  id: string
  label: string
  value: number
  unit: string
  limit: number | null
  limitLabel: string
  /** value / limit (for RSS: value / the budget). */
  ratio: number | null
  target: string
  met: boolean | null
}

const figures: Figure[] = []
const notes: string[] = []
const failures: string[] = []
const raw: Record<string, unknown> = {}
const MB = 1024 * 1024

function figure(f: Omit<Figure, 'ratio'> & { ratio?: number | null }) {
  const ratio = f.ratio !== undefined ? f.ratio : f.limit ? f.value / f.limit : null
  figures.push({ ...f, ratio })
}

function log(message: string) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

/** Two alternating rounds of query and batch; the best of each (the machine is shared). */
async function bestOf<T extends ScenarioResult>(rounds: number, run: () => Promise<T>): Promise<T> {
  let best: T | undefined
  for (let i = 0; i < rounds; i++) {
    const r = await run()
    if (!best || (r.ms as number) < (best.ms as number)) best = r
  }
  return best!
}

/** One size of the SQLite batch: set up N events, then alternating rounds of query alone and batch. */
async function measureSqliteBatch(dir: string, events: number, rounds: number) {
  const path = join(dir, `batch-${events}.db`)
  const sized = { ...shape, events }
  log(`SQLite: inserting ${events} events for ${DAY}`)
  const setup = await runScenario('sqlite-setup', { path, shape: sized, date: DAY })
  // Warm the page cache once, so neither measured side pays the first read from disk (not worth a
  // process start at --quick sizes, where the file was just written and is in the cache anyway).
  if (!quick) await runScenario('sqlite-query', { path, date: DAY })
  let query: ScenarioResult | undefined
  let batch: ScenarioResult | undefined
  for (let i = 0; i < rounds; i++) {
    log(`SQLite ${events}: grouped query alone, round ${i + 1}`)
    const q = await runScenario('sqlite-query', { path, date: DAY })
    log(`SQLite ${events}: full batch day, round ${i + 1}`)
    const b = await runScenario('sqlite-batch', { path: join(dir, `batch-copy.db`), source: path, date: DAY })
    if (!query || (q.ms as number) < (query.ms as number)) query = q
    if (!batch || (b.ms as number) < (batch.ms as number)) batch = b
  }
  rmSync(path, { force: true })
  rmSync(join(dir, 'batch-copy.db'), { force: true })
  return { setup, query: query!, batch: batch! }
}

async function benchBatchSqlite(dir: string, baselineRss: number) {
  const one = await measureSqliteBatch(dir, shape.events, quick ? 1 : 2)
  raw.sqliteSetup = one.setup
  raw.sqliteQuery = one.query
  raw.sqliteBatch = one.batch
  const timeFigure = (id: string, size: string, m: typeof one) =>
    figure({
      id,
      label: `batch day, SQLite ${size} (${m.query.records as number} events, ${m.query.rows as number} groups)`,
      value: m.batch.ms as number,
      unit: 'ms',
      limit: m.query.ms as number,
      limitLabel: 'grouped SELECT alone (better-sqlite3)',
      target: '≤ 1.3×',
      met: (m.batch.ms as number) <= 1.3 * (m.query.ms as number),
    })
  timeFigure('batch.sqlite.time', '1×', one)
  figure({
    id: 'batch.sqlite.rss',
    label: 'batch day, SQLite 1×: peak RSS of the batch process',
    value: one.batch.maxRssBytes / MB,
    unit: 'MB',
    limit: 300,
    limitLabel: `budget 300 MB (bare process with the modules loaded: ${(baselineRss / MB).toFixed(0)} MB; query alone: ${(one.query.maxRssBytes / MB).toFixed(0)} MB)`,
    target: '< 300 MB',
    met: one.batch.maxRssBytes < 300 * MB,
  })
  if (flags['skip-5x']) {
    notes.push('SQLite 5×: skipped (--skip-5x)')
    return
  }
  const five = await measureSqliteBatch(dir, shape.events * SCALE, 1)
  raw.sqlite5x = five
  timeFigure('batch.sqlite.5x.time', `${SCALE}×`, five)
  growthFigures('sqlite', 'batch day, SQLite', one.batch, five.batch)
}

/** How a batch's peak RSS (target: < 25 % growth) and time grow from 1× to 5× the events. */
function growthFigures(id: string, name: string, one: ScenarioResult, five: ScenarioResult) {
  figure({
    id: `${id}.growth.batch.rss`,
    label: `${name}: peak RSS at ${SCALE}× vs 1×`,
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
  const sizes: Array<{ events: number; label: string }> = [{ events: influxEvents, label: '1×' }]
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
      const rawQuery = await bestOf(quick || !first ? 1 : 2, () => runScenario('influx-raw', { url: influxd.url, date: DAY }))
      log(`InfluxDB ${label}: per-client sequential queries`)
      const perClient = await runScenario('influx-perclient', { url: influxd.url, date: DAY })
      log(`InfluxDB ${label}: full batch day, per-client mode (${INFLUX_PER_CLIENT_CONCURRENCY} in flight, the service's default)`)
      const batch = await runScenario('influx-batch', { url: influxd.url, path: join(dir, `influx-${s}.db`), date: DAY, perClient: INFLUX_PER_CLIENT_CONCURRENCY })
      const name = `InfluxDB ${label} (${events} points, ${rawQuery.rows} groups)`
      /** A time against the one grouped query: a ≤ 1.3× target, or information. */
      const vsRawQuery = (id: string, figureLabel: string, ms: number, target: 'batch' | 'information') =>
        figure({
          id,
          label: figureLabel,
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
          value: batch.maxRssBytes / MB,
          unit: 'MB',
          limit: 300,
          limitLabel: 'budget 300 MB',
          target: '< 300 MB',
          met: batch.maxRssBytes < 300 * MB,
        })
      }
      figure({
        id: `influxd${label === '1×' ? '' : '.5x'}.rss`,
        label: `${name}: influxd peak RSS (VmHWM, load + queries)`,
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
      value: five.raw.ms as number,
      unit: 'ms',
      limit: one.raw.ms as number,
      limitLabel: 'same query at 1×',
      target: 'information (≈5× expected)',
      met: null,
    })
    if (one.batch && five.batch) {
      growthFigures('influx', 'InfluxDB batch', one.batch, five.batch)
    } else {
      notes.push('InfluxDB 5× batch RSS growth: not measured (source not available on this branch)')
    }
  }

  function load(p: typeof perScale): number | undefined {
    return p['1×']?.load.ms as number | undefined
  }
}

async function benchIngest(dir: string) {
  const ingestShape = { ...shape, events: ingestEvents, seed: shape.seed + 1 }
  log(`ingestion: direct insert loop, ${ingestEvents} events`)
  const direct = await runScenario('ingest-direct', { path: join(dir, 'ingest-direct.db'), shape: ingestShape, date: INGEST_DAY, perRequest: INGEST_PER_REQUEST })
  log(`ingestion: POST /usage/events over HTTP, ${ingestEvents} events`)
  const http = await runScenario('ingest-http', {
    path: join(dir, 'ingest-http.db'),
    shape: ingestShape,
    date: INGEST_DAY,
    perRequest: INGEST_PER_REQUEST,
    concurrency: INGEST_CONCURRENCY,
  })
  raw.ingest = { direct, http }
  if (http.accepted !== direct.accepted) throw new Error(`ingestion accepted ${http.accepted} over HTTP but ${direct.accepted} directly`)
  figure({
    id: 'ingest.rate',
    label: `ingestion: POST /usage/events, ${INGEST_PER_REQUEST}/request, ${INGEST_CONCURRENCY} in flight (${ingestEvents} events)`,
    value: http.eventsPerSecond as number,
    unit: 'events/s',
    limit: direct.eventsPerSecond as number,
    limitLabel: 'direct better-sqlite3 insert loop, transaction per 1,000',
    target: '≥ 0.40×',
    met: (http.eventsPerSecond as number) >= 0.4 * (direct.eventsPerSecond as number),
  })
}

async function benchReads(dir: string) {
  const path = join(dir, 'reads.db')
  log(`reads: ${READS.clients} clients × 365 days of client_daily_usage`)
  raw.readsSetup = await runScenario('reads-setup', { path, clients: READS.clients, from: READS.from, date: READS.to })
  const common = { connections: READ_CONNECTIONS, durationS: readsDurationS }
  log(`reads: bare route, ${readsDurationS} s at ${READ_CONNECTIONS} connections`)
  const bare = await runScenario('reads-serve', { kind: 'bare', ...common, date: READS.to })
  log(`reads: GET /usage/clients/{id}/daily (31 days), ${readsDurationS} s at ${READ_CONNECTIONS} connections`)
  const app = await runScenario('reads-serve', { kind: 'app', path, clients: READS.clients, range: READS.range, ...common, date: READS.to })
  raw.reads = { bare, app }
  if ((app.non2xx as number) > 0 || (app.errors as number) > 0) throw new Error(`reads answered ${app.non2xx} non-2xx and ${app.errors} errors`)
  figure({
    id: 'reads.rps',
    label: `reads: GET /usage/clients/{id}/daily, 31 days, ${READ_CONNECTIONS} connections`,
    value: app.requestsPerSecond as number,
    unit: 'req/s',
    limit: bare.requestsPerSecond as number,
    limitLabel: 'bare Fastify route returning a constant',
    target: '≥ 0.50×',
    met: (app.requestsPerSecond as number) >= 0.5 * (bare.requestsPerSecond as number),
  })
  figure({
    id: 'reads.p99',
    label: `reads: p99 latency (p50 ${app.p50Ms} ms; bare route p50 ${bare.p50Ms} ms, p99 ${bare.p99Ms} ms)`,
    value: app.p99Ms as number,
    unit: 'ms',
    limit: 25,
    limitLabel: 'budget 25 ms',
    target: '< 25 ms',
    met: (app.p99Ms as number) < 25,
  })
}

function formatValue(v: number, unit: string): string {
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2
  return `${v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })} ${unit}`
}

export function markdownTable(list: Figure[]): string {
  const lines = ['| figure | value | limit | ratio | target | met |', '|---|---|---|---|---|---|']
  for (const f of list) {
    const limit = f.limit === null ? f.limitLabel : `${formatValue(f.limit, f.unit)} (${f.limitLabel})`
    const met = f.met === null ? '–' : f.met ? 'met' : '**missed**'
    lines.push(`| ${f.label} | ${formatValue(f.value, f.unit)} | ${limit} | ${f.ratio === null ? '–' : f.ratio.toFixed(2)} | ${f.target} | ${met} |`)
  }
  return lines.join('\n')
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
      ...shape,
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
    },
    rssMethod: 'process.resourceUsage().maxRSS of a dedicated child process per scenario (node --import tsx)',
    figures,
    notes,
    failures,
    raw,
  }
  const out = flags.out ?? join(BENCH_DIR, 'results.json')
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
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
