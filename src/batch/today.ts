// Today so far, aggregated live from the raw store and priced like a batch day would be, but
// never stored: today is not over, so these figures are unbilled. A short cache keeps dashboards
// that poll from turning into one raw-store query per request.
import { dayWindow, today } from '../clock.js'
import type { Clock } from '../clock.js'
import type { ClientDay, Store } from '../db/store.js'
import type { UsageSource } from '../sources/types.js'
import { buildClientDay, groupByClient, groupsOf } from './rows.js'

export const TODAY_CACHE_TTL_MS = 30_000
/** Beyond this many cached clients the oldest entries go first (ids come from the URL). */
const TODAY_CACHE_MAX_ENTRIES = 1_000

export interface LiveToday {
  usage_date: string
  window_start_ms: number
  as_of_ms: number
  day: ClientDay
}

export interface TodayDeps {
  store: Store
  source: UsageSource
  clock: Clock
  timeZone: string
  defaultMarkupRate: string
  ttlMs?: number
}

export function createTodayView(deps: TodayDeps) {
  const ttlMs = deps.ttlMs ?? TODAY_CACHE_TTL_MS
  const cache = new Map<string, { expiresAtMs: number; value: LiveToday }>()

  async function compute(clientOrgId: string, date: string, nowMs: number): Promise<LiveToday> {
    const window = dayWindow(date, deps.timeZone)
    const rows = []
    for await (const row of deps.source.aggregate({ startMs: window.startMs, endMs: nowMs }, { clientOrgId })) rows.push(row)
    const groups = groupByClient(rows).get(clientOrgId)
    // The markup in force today; PLN only when today's rate is already stored (never fetched or guessed here).
    const [markupRate, stored] = await Promise.all([deps.store.pricing.inForce(clientOrgId, date, deps.defaultMarkupRate), deps.store.rates.get(date)])
    const day = buildClientDay(clientOrgId, groups ? groupsOf(groups) : [], {
      markupRate,
      usdPln: stored ? { rate: stored.rate, effective_date: stored.effective_date } : null,
      dataSource: deps.source.dataSource,
    })
    return { usage_date: date, window_start_ms: window.startMs, as_of_ms: nowMs, day }
  }

  return {
    /** How long a client's figures are reused. */
    ttlMs,

    /** Forgets every cached figure: the raw records changed other than by arrival (a void). */
    clear(): void {
      cache.clear()
    },

    async forClient(clientOrgId: string): Promise<LiveToday> {
      const nowMs = deps.clock.now()
      const date = today(deps.clock, deps.timeZone)
      const key = JSON.stringify([clientOrgId, date])
      const hit = cache.get(key)
      if (hit && hit.expiresAtMs > nowMs) return hit.value
      const value = await compute(clientOrgId, date, nowMs)
      cache.delete(key)
      cache.set(key, { expiresAtMs: nowMs + ttlMs, value })
      if (cache.size > TODAY_CACHE_MAX_ENTRIES) {
        for (const [k, entry] of cache) if (entry.expiresAtMs <= nowMs) cache.delete(k)
        // Insertion order is age order (a refreshed key is re-inserted above).
        for (const k of cache.keys()) {
          if (cache.size <= TODAY_CACHE_MAX_ENTRIES) break
          cache.delete(k)
        }
      }
      return value
    },
  }
}

export type TodayView = ReturnType<typeof createTodayView>
