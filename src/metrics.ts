// Prometheus metrics. One registry per instance, never prom-client's global one: tests build many
// apps in one process, and a metric registered twice on the global registry throws.
//
// Two kinds of figures. The batch figures are read from the run ledger at scrape time: they count
// every run closed on this database, whichever process ran it (this server, a CLI backfill, another
// replica, recovery marking a dead run `abandoned`), they exist at 0 before the first run, and a
// restart does not reset them. Everything else (HTTP, NBP requests, InfluxDB queries) is what this
// process did, counted in memory.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client'
import { CLOSED_RUN_STATUSES, RUN_TRIGGERS, SUCCESS_STATUSES, type RunTrigger } from './db/enums.js'
import { isOneOf } from './db/enums.js'
import type { ClosedRunTotals, Store } from './db/store.js'
import type { Clock } from './clock.js'
import type { Config } from './config.js'
import { compileSchedule } from './cron.js'
import { catchUpWindow, datesBehind } from './scheduler/due.js'

/** Every metric this service defines; the Grafana dashboard, the alert rules and docs/operations.md#metrics use these names. */
export const METRIC_NAMES = {
  httpRequests: 'http_requests_total',
  httpDuration: 'http_request_duration_seconds',
  batchRuns: 'usage_batch_runs_total',
  batchRunsWithClientErrors: 'usage_batch_runs_with_client_errors_total',
  batchDayDuration: 'usage_batch_day_duration_seconds',
  batchRecords: 'usage_batch_records_processed_total',
  batchSummaries: 'usage_batch_summaries_written_total',
  batchCorrections: 'usage_batch_data_corrections_total',
  lastSuccessDate: 'usage_batch_last_success_date_timestamp_seconds',
  daysBehind: 'usage_batch_days_behind',
  datesWithoutPln: 'usage_batch_dates_without_pln',
  nbpFailures: 'usage_batch_nbp_fetch_failures_total',
  influxDuration: 'usage_batch_influxdb_query_duration_seconds',
  influxErrors: 'usage_batch_influxdb_query_errors_total',
  influxUp: 'usage_batch_influxdb_up',
} as const

/** Metrics exposed only in the InfluxDB-first mode. */
export const INFLUXDB_ONLY_METRICS: ReadonlySet<string> = new Set([METRIC_NAMES.influxUp])

/**
 * prom-client's default gauges that end in `_total`, which `promtool check metrics` rejects (only
 * counters may). Each is the sum of the per-type gauge beside it (`nodejs_active_handles{type}`).
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

/** Label for requests that matched no route: raw URLs would make label cardinality unbounded. */
export const UNMATCHED_ROUTE = 'unmatched'


/** What the database says at scrape time. Each reader may reject: its families are then left out of that scrape. */
export interface LedgerReadings {
  closedRuns(boundsMs: readonly number[]): Promise<ClosedRunTotals[]>
  /** YYYY-MM-DD or null. */
  lastSuccessDate(): Promise<string | null>
  /** Due dates of the catch-up window without a successful run (src/scheduler/due.ts). */
  daysBehind(): Promise<number>
  /** Dates of the catch-up window whose PLN is still missing. */
  datesWithoutPln(): Promise<number>
}

/** The ledger readings of a database, with the schedule and catch-up window of the configuration. */
export function databaseLedger(
  store: Store,
  config: Pick<Config, 'BATCH_SCHEDULE_CRON' | 'BUSINESS_TIMEZONE' | 'BATCH_CATCHUP_DAYS'>,
  clock: Clock,
): LedgerReadings {
  const schedule = compileSchedule(config.BATCH_SCHEDULE_CRON, config.BUSINESS_TIMEZONE)
  const timeZone = config.BUSINESS_TIMEZONE
  const catchupDays = config.BATCH_CATCHUP_DAYS
  // Runs up to the settled id are final (store.ts ClosedTotalsRead): their totals are kept, and each
  // scrape reads only the runs after them, so a scrape costs the same with ten years of ledger as with one.
  let settled: { throughId: number; boundsMs: readonly number[]; totals: ClosedRunTotals[] } | undefined
  const closedRuns = async (boundsMs: readonly number[]): Promise<ClosedRunTotals[]> => {
    if (settled && settled.boundsMs !== boundsMs) settled = undefined
    const before = settled ?? { throughId: 0, boundsMs, totals: [] }
    // One snapshot: the settled id and both sums agree with each other.
    const read = await store.runs.closedTotals(boundsMs, before.throughId)
    const next = { throughId: Math.max(read.settledThroughId, before.throughId), boundsMs, totals: addTotals(before.totals, read.newlySettled) }
    settled = next
    return addTotals(next.totals, read.unsettled)
  }
  return {
    closedRuns,
    lastSuccessDate: () => store.runs.lastSuccessDate(),
    daysBehind: async () => (await datesBehind({ store, clock, timeZone, schedule, catchupDays })).length,
    datesWithoutPln: async () => (await store.runs.datesWithPlnMissing(catchUpWindow(clock, timeZone, catchupDays))).size,
  }
}

/** Two sets of ledger totals added up per status × trigger. */
export function addTotals(a: ClosedRunTotals[], b: ClosedRunTotals[]): ClosedRunTotals[] {
  const out = new Map(a.map((r) => [`${r.status}\u0000${r.trigger}`, { ...r, runsAtOrBelowMs: [...r.runsAtOrBelowMs] }]))
  for (const r of b) {
    const key = `${r.status}\u0000${r.trigger}`
    const into = out.get(key)
    if (!into) {
      out.set(key, { ...r, runsAtOrBelowMs: [...r.runsAtOrBelowMs] })
      continue
    }
    into.runs += r.runs
    into.records += r.records
    into.summaries += r.summaries
    into.corrections += r.corrections
    into.runsWithClientErrors += r.runsWithClientErrors
    into.timedRuns += r.timedRuns
    into.durationMsSum += r.durationMsSum
    into.runsAtOrBelowMs = into.runsAtOrBelowMs.map((n, i) => n + (r.runsAtOrBelowMs[i] ?? 0))
  }
  return [...out.values()]
}

export interface Metrics {
  readonly registry: Registry
  /** Once per NBP range request that failed after the client's own retries (services.ts withFetchMetrics). */
  nbpFetchFailed(): void
  /** InfluxDB sources call this once per query with its wall duration and whether it succeeded. */
  influxQuery(durationMs: number, ok: boolean): void
  /** HTTP layer: one finished request, labelled by route pattern. */
  httpRequest(method: string, route: string, statusCode: number, durationMs: number): void
  /** Prometheus text exposition. */
  render(): Promise<string>
  readonly contentType: string
}

export interface MetricsOptions {
  /** The run ledger; without it the batch families are absent (a metrics object for a source alone). */
  ledger?: LedgerReadings
  /** InfluxDB-first: whether InfluxDB answers (a cached check); the gauge exists only when given. */
  influxdbUp?: () => Promise<boolean>
  /** Node process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean
}

/** Buckets for a batch day: a quiet day takes milliseconds, a large InfluxDB day minutes. */
export const DAY_DURATION_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
const QUERY_DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const HTTP_DURATION_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** YYYY-MM-DD → epoch seconds of that calendar date at 00:00 UTC (a date has no zone; this encodes it). */
export function dateToEpochSeconds(date: string): number {
  return Date.parse(`${date}T00:00:00Z`) / 1000
}

interface Sample {
  metricName?: string
  labels: Record<string, string | number>
  value: number
}

/**
 * A family whose samples are computed at scrape time (prom-client's classes only accumulate what
 * this process observed). `samples` returning undefined leaves the family without samples.
 */
function computedFamily(
  registry: Registry,
  name: string,
  help: string,
  type: 'counter' | 'gauge' | 'histogram',
  samples: () => Sample[] | undefined | Promise<Sample[] | undefined>,
): void {
  const family = {
    name,
    help,
    type,
    aggregator: 'sum',
    async get() {
      return { name, help, type, aggregator: 'sum', values: (await samples()) ?? [] }
    },
    reset() {},
  }
  registry.registerMetric(family as unknown as Metric)
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry()
  if (options.processMetrics !== false) {
    collectDefaultMetrics({ register: registry })
    for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name)
  }

  const httpRequests = new Counter({
    name: METRIC_NAMES.httpRequests,
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [registry],
  })
  const httpDuration = new Histogram({
    name: METRIC_NAMES.httpDuration,
    help: 'HTTP request duration in seconds, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_DURATION_BUCKETS_S,
    registers: [registry],
  })

  const ledger = options.ledger
  const scrape: ScrapeState = {}
  if (ledger) registerLedgerFamilies(registry, ledger, scrape)

  const nbpFailures = new Counter({
    name: METRIC_NAMES.nbpFailures,
    help: 'NBP rate requests made by this process that failed after their retries',
    registers: [registry],
  })
  const influxDuration = new Histogram({
    name: METRIC_NAMES.influxDuration,
    help: 'InfluxDB query duration in seconds, by outcome (ok or error), queries made by this process',
    labelNames: ['outcome'] as const,
    buckets: QUERY_DURATION_BUCKETS_S,
    registers: [registry],
  })
  const influxErrors = new Counter({
    name: METRIC_NAMES.influxErrors,
    help: 'InfluxDB queries made by this process that failed',
    registers: [registry],
  })
  // Zero-valued series exist from the start, so rate() and the dashboard work before the first event.
  influxDuration.zero({ outcome: 'ok' })
  influxDuration.zero({ outcome: 'error' })

  const influxdbUp = options.influxdbUp
  if (influxdbUp) {
    new Gauge({
      name: METRIC_NAMES.influxUp,
      help: 'InfluxDB-first: 1 when InfluxDB answers and its query dialect is known, else 0 (checked at most every 5 s)',
      registers: [registry],
      async collect() {
        let up = false
        try {
          up = await influxdbUp()
        } catch {
          up = false
        }
        this.set(up ? 1 : 0)
      },
    })
  }

  return {
    registry,
    contentType: registry.contentType,
    nbpFetchFailed() {
      nbpFailures.inc()
    },
    influxQuery(durationMs, ok) {
      influxDuration.observe({ outcome: ok ? 'ok' : 'error' }, durationMs / 1000)
      if (!ok) influxErrors.inc()
    },
    httpRequest(method, route, statusCode, durationMs) {
      const labels = { method, route, status_code: String(statusCode) }
      httpRequests.inc(labels)
      httpDuration.observe(labels, durationMs / 1000)
    },
    async render() {
      // The registry asks every family at once, synchronously, when a render starts.
      scrape.current = {}
      try {
        return await registry.metrics()
      } finally {
        scrape.current = undefined
      }
    },
  }
}

/** One render of /metrics: the batch families of a scrape share one ledger query. */
interface ScrapeState {
  current?: { totals?: Promise<ClosedRunTotals[] | undefined> }
}

function registerLedgerFamilies(registry: Registry, ledger: LedgerReadings, scrape: ScrapeState): void {
  const boundsMs = DAY_DURATION_BUCKETS_S.map((s) => s * 1000)
  const totals = (): Promise<ClosedRunTotals[] | undefined> => {
    const cached = scrape.current?.totals
    if (cached) return cached
    // A broken store must not break the scrape, and must not read as counters going to 0 (a reset
    // would make increase() invent runs when they come back); /health reports the store.
    const value = ledger.closedRuns(boundsMs).catch(() => undefined)
    if (scrape.current) scrape.current.totals = value
    return value
  }
  const key = (status: string, trigger: string) => `${status}\u0000${trigger}`
  const byKey = (rows: ClosedRunTotals[]) => new Map(rows.map((r) => [key(r.status, r.trigger), r]))
  const sumOfSuccesses = (pick: (r: ClosedRunTotals) => number) => async (): Promise<Sample[] | undefined> => {
    const rows = await totals()
    return rows && [{ labels: {}, value: rows.filter((r) => isOneOf(SUCCESS_STATUSES, r.status)).reduce((n, r) => n + pick(r), 0) }]
  }

  computedFamily(registry, METRIC_NAMES.batchRuns, 'Batch day runs closed on this database (any process), by final status and trigger', 'counter', async () => {
    const rows = await totals()
    if (!rows) return undefined
    const found = byKey(rows)
    return CLOSED_RUN_STATUSES.flatMap((status) =>
      RUN_TRIGGERS.map((trigger) => ({ labels: { status, trigger }, value: found.get(key(status, trigger))?.runs ?? 0 })),
    )
  })
  computedFamily(
    registry,
    METRIC_NAMES.batchRunsWithClientErrors,
    'Batch day runs closed on this database with per-client errors (some clients not aggregated), by trigger',
    'counter',
    async () => {
      const rows = await totals()
      if (!rows) return undefined
      return RUN_TRIGGERS.map((trigger: RunTrigger) => ({
        labels: { trigger },
        value: rows.filter((r) => r.trigger === trigger).reduce((n, r) => n + r.runsWithClientErrors, 0),
      }))
    },
  )
  computedFamily(registry, METRIC_NAMES.batchDayDuration, 'Duration of one batch day run in seconds, by final status (runs closed on this database)', 'histogram', async () => {
    const rows = await totals()
    if (!rows) return undefined
    return CLOSED_RUN_STATUSES.flatMap((status): Sample[] => {
      const of = rows.filter((r) => r.status === status)
      const timed = of.reduce((n, r) => n + r.timedRuns, 0)
      const sumMs = of.reduce((n, r) => n + r.durationMsSum, 0)
      return [
        ...DAY_DURATION_BUCKETS_S.map((le, i) => ({
          metricName: `${METRIC_NAMES.batchDayDuration}_bucket`,
          labels: { le, status },
          value: of.reduce((n, r) => n + r.runsAtOrBelowMs[i]!, 0),
        })),
        { metricName: `${METRIC_NAMES.batchDayDuration}_bucket`, labels: { le: '+Inf', status }, value: timed },
        { metricName: `${METRIC_NAMES.batchDayDuration}_sum`, labels: { status }, value: sumMs / 1000 },
        { metricName: `${METRIC_NAMES.batchDayDuration}_count`, labels: { status }, value: timed },
      ]
    })
  })
  computedFamily(registry, METRIC_NAMES.batchRecords, 'Raw usage records aggregated by successful batch day runs on this database', 'counter', sumOfSuccesses((r) => r.records))
  computedFamily(
    registry,
    METRIC_NAMES.batchSummaries,
    'Summary rows written (client, user x model and model rows) by successful batch day runs on this database',
    'counter',
    sumOfSuccesses((r) => r.summaries),
  )
  computedFamily(
    registry,
    METRIC_NAMES.batchCorrections,
    'Summary rows added, changed or removed by reruns compared with the previous run of the day',
    'counter',
    sumOfSuccesses((r) => r.corrections),
  )

  const gauge = (name: string, help: string, read: () => Promise<number>) =>
    computedFamily(registry, name, help, 'gauge', async () => {
      try {
        return [{ labels: {}, value: await read() }]
      } catch {
        return undefined
      }
    })
  gauge(
    METRIC_NAMES.lastSuccessDate,
    'Latest usage date with a successful batch run, as epoch seconds of that date at 00:00 UTC; 0 when none',
    async () => {
      const date = await ledger.lastSuccessDate()
      return date ? dateToEpochSeconds(date) : 0
    },
  )
  gauge(
    METRIC_NAMES.daysBehind,
    'Dates of the catch-up window whose scheduled run time has passed without a successful run (none in progress; none due before the database existed)',
    () => ledger.daysBehind(),
  )
  gauge(METRIC_NAMES.datesWithoutPln, 'Dates of the catch-up window whose summaries still lack PLN (no USD/PLN rate)', () => ledger.datesWithoutPln())
}
