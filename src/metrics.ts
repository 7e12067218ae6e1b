// Prometheus metrics. One registry per instance, never prom-client's global one: tests build many
// apps in one process, and a metric registered twice on the global registry throws.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { BatchRunRow } from './db/schema.js'

/** Every metric this service defines; the Grafana dashboard and README use these names. */
export const METRIC_NAMES = {
  httpRequests: 'http_requests_total',
  httpDuration: 'http_request_duration_seconds',
  batchRuns: 'usage_batch_runs_total',
  batchDayDuration: 'usage_batch_day_duration_seconds',
  batchRecords: 'usage_batch_records_processed_total',
  batchSummaries: 'usage_batch_summaries_written_total',
  batchCorrections: 'usage_batch_data_corrections_total',
  lastSuccessDate: 'usage_batch_last_success_date_timestamp_seconds',
  nbpFailures: 'usage_batch_nbp_fetch_failures_total',
  influxDuration: 'usage_batch_influxdb_query_duration_seconds',
  influxErrors: 'usage_batch_influxdb_query_errors_total',
} as const

/** Label for requests that matched no route: raw URLs would make label cardinality unbounded. */
export const UNMATCHED_ROUTE = 'unmatched'

export interface Metrics {
  readonly registry: Registry
  /** The batch service's `onRunFinished` hook: one closed run (any status). */
  batchRunFinished(run: BatchRunRow): void
  /** Once per NBP range request that failed after the client's own retries (runtime.ts withFetchMetrics). */
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
  /** Read at scrape time, so the gauge is right after a restart too. YYYY-MM-DD or null. */
  lastSuccessDate?: () => string | null
  /** Node process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean
}

/** Buckets for a batch day: a quiet day takes milliseconds, a large InfluxDB day minutes. */
const DAY_DURATION_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
const QUERY_DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
const HTTP_DURATION_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** YYYY-MM-DD → epoch seconds of that calendar date at 00:00 UTC (a date has no zone; this encodes it). */
export function dateToEpochSeconds(date: string): number {
  return Date.parse(`${date}T00:00:00Z`) / 1000
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry()
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry })

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
  const batchRuns = new Counter({
    name: METRIC_NAMES.batchRuns,
    help: 'Batch day runs finished, by final status and trigger',
    labelNames: ['status', 'trigger'] as const,
    registers: [registry],
  })
  const batchDayDuration = new Histogram({
    name: METRIC_NAMES.batchDayDuration,
    help: 'Duration of one batch day run in seconds, by final status',
    labelNames: ['status'] as const,
    buckets: DAY_DURATION_BUCKETS_S,
    registers: [registry],
  })
  const batchRecords = new Counter({
    name: METRIC_NAMES.batchRecords,
    help: 'Raw usage records aggregated by successful batch day runs',
    registers: [registry],
  })
  const batchSummaries = new Counter({
    name: METRIC_NAMES.batchSummaries,
    help: 'Summary rows written (client, user x model and model rows) by successful batch day runs',
    registers: [registry],
  })
  const batchCorrections = new Counter({
    name: METRIC_NAMES.batchCorrections,
    help: 'Summary rows added, changed or removed by reruns compared with the previous run of the day',
    registers: [registry],
  })
  const lastSuccess = options.lastSuccessDate
  new Gauge({
    name: METRIC_NAMES.lastSuccessDate,
    help: 'Latest usage date with a successful batch run, as epoch seconds of that date at 00:00 UTC; 0 when none',
    registers: [registry],
    collect() {
      let date: string | null = null
      try {
        date = lastSuccess?.() ?? null
      } catch {
        // A broken store must not break the scrape; /health reports the store itself.
        date = null
      }
      this.set(date ? dateToEpochSeconds(date) : 0)
    },
  })
  const nbpFailures = new Counter({
    name: METRIC_NAMES.nbpFailures,
    help: 'NBP rate requests that failed after their retries',
    registers: [registry],
  })
  const influxDuration = new Histogram({
    name: METRIC_NAMES.influxDuration,
    help: 'InfluxDB query duration in seconds, by outcome (ok or error)',
    labelNames: ['outcome'] as const,
    buckets: QUERY_DURATION_BUCKETS_S,
    registers: [registry],
  })
  const influxErrors = new Counter({
    name: METRIC_NAMES.influxErrors,
    help: 'InfluxDB queries that failed',
    registers: [registry],
  })
  // Zero-valued series exist from the start, so rate() and the dashboard work before the first event.
  influxDuration.zero({ outcome: 'ok' })
  influxDuration.zero({ outcome: 'error' })

  return {
    registry,
    contentType: registry.contentType,
    batchRunFinished(run) {
      batchRuns.inc({ status: run.status, trigger: run.trigger })
      if (run.duration_ms !== null) batchDayDuration.observe({ status: run.status }, run.duration_ms / 1000)
      // A failed or interrupted day wrote nothing: its figures are not counted.
      if (run.status === 'succeeded' || run.status === 'succeeded_with_warnings') {
        batchRecords.inc(run.records_processed)
        batchSummaries.inc(run.summaries_written)
        batchCorrections.inc(run.data_corrections)
      }
    },
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
    render: () => registry.metrics(),
  }
}
