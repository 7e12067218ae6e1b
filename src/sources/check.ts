// The raw store's health as /health and /metrics see it: one check shared by both, reused for a few
// seconds, so probes, scrapes and dashboards together reach InfluxDB at most once per period.
import type { Clock } from '../clock.js'
import type { SourceHealth, UsageSource } from './types.js'
import { redactDeep, redactText } from '../redact.js'

/**
 * How long a remote check (InfluxDB) is reused. Kubernetes probes, Prometheus and dashboards may
 * all poll /health and /metrics; together they reach InfluxDB at most once per this period.
 */
export const REMOTE_CHECK_TTL_MS = 5_000

export interface StoreStatus {
  status: SourceHealth['status'] | 'disabled'
  detail: Record<string, unknown>
}

/**
 * Reuses a check's result for `ttlMs` of the injected clock, and joins a check in progress
 * instead of starting a second one.
 */
export function cachedCheck<T>(clock: Clock, ttlMs: number, run: () => Promise<T>): () => Promise<T> {
  let cached: { atMs: number; value: T } | undefined
  let pending: Promise<T> | undefined
  return () => {
    const nowMs = clock.now()
    if (cached && nowMs - cached.atMs < ttlMs) return Promise.resolve(cached.value)
    pending ??= run()
      .then((value) => {
        cached = { atMs: nowMs, value }
        return value
      })
      .finally(() => {
        pending = undefined
      })
    return pending
  }
}

/** InfluxDB's state in the InfluxDB-first mode (cached); `disabled` in the embedded mode, where SQLite is the store. */
export function influxdbCheck(source: UsageSource, clock: Clock, influxdbFirst: boolean): () => Promise<StoreStatus> {
  if (!influxdbFirst) return async () => ({ status: 'disabled', detail: {} })
  return cachedCheck(clock, REMOTE_CHECK_TTL_MS, async () => {
    const checkedAt = new Date(clock.now()).toISOString()
    try {
      const result = await source.check()
      return { status: result.status, detail: { ...redactDeep(result.detail), checked_at: checkedAt } }
    } catch (e) {
      return { status: 'down', detail: { error: redactText((e as Error).message), checked_at: checkedAt } }
    }
  })
}
