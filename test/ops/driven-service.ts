// A real app and scheduler driven through hours of ticks on a fixed clock, scraped like Prometheus
// would, and the alert rules of deploy/ run (promtool test rules) over those scrapes.
import type { Test } from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import { fixedClock } from '../../src/clock.js'
import { METRIC_NAMES } from '../../src/metrics.js'
import type { RateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, postEvents, type TestApp } from '../helper.js'
import { manualTimers } from '../support/timers.js'
import { failingSource } from './fixtures.js'
import { parsePrometheusText, type Family } from './prometheus.js'

export const RULES = join(fileURLToPath(new URL('../../', import.meta.url)), 'deploy/prometheus-rules.yaml')

type Rule = { alert: string; expr: string; annotations: Record<string, string> }
export const alertRules = () => (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules)

const okRates: RateProvider = {
  async resolveUsdPlnRate(date) {
    return {
      ok: true,
      rate: { usage_date: date, rate: '4.0341', effective_date: date, table_no: '1/A/NBP/2026', source: 'nbp', policy: 'previous-business-day', fetched_at: '2026-01-01T00:00:00.000Z' },
    }
  },
}

/** Families the rules read, as promtool input series labelled like a scrape. */
export const RULE_FAMILIES = [METRIC_NAMES.batchRuns, METRIC_NAMES.batchRunsWithClientErrors, METRIC_NAMES.daysBehind, METRIC_NAMES.datesWithoutPln]
export const SCRAPE_EVERY_MIN = 15
/** 2026-11-27 00:00 Europe/Warsaw: time 0 of the generated promtool tests. */
export const T0_MS = Date.parse('2026-11-26T23:00:00Z')
const MINUTE_MS = 60_000

export interface Drive {
  /** Per series (as promtool writes it), one value per scrape. */
  series: Map<string, number[]>
  daysBehindAt: Array<{ minute: number; value: number }>
}

/**
 * A real app and scheduler (manual timers on a fixed clock) from 2026-11-27 00:00 Warsaw for `hours`,
 * scraped every 15 minutes. `during` runs at each scrape instant before the scrape (a failing tick,
 * an admin rerun). Nothing in the service changes between two scrape instants (the clock jumps), so
 * a scrape's value also stands for the minutes until the next one.
 */
export async function driveService(t: Test, hours: number, during: (minute: number, test: TestApp & { source: ReturnType<typeof failingSource> }) => Promise<void>): Promise<Drive> {
  let source: ReturnType<typeof failingSource> | undefined
  const clock = fixedClock(T0_MS)
  const manual = manualTimers(clock)
  const test = await buildTestApp(t, {
    clock,
    env: { BATCH_SCHEDULER_ENABLED: 'true' },
    dbCreatedMs: T0_MS - 30 * 86_400_000,
    rates: okRates,
    source: (store) => (source = failingSource(createSqliteSource({ store, clock: fixedClock(T0_MS) }))),
    deps: { timers: manual.timers },
  })
  const { scheduler } = test.services
  // Usage on every day, so runs have records.
  const events = Array.from({ length: 8 }, (_, i) => ({
    request_id: `e${i}`,
    client_org_id: i % 2 ? 'acme' : 'globex',
    model: 'm1',
    input_tokens: 10,
    output_tokens: 5,
    cost_usd: '0.01',
    timestamp: new Date(T0_MS - 8 * 86_400_000 + i * 86_400_000 + 3_600_000).toISOString(),
  }))
  t.equal((await postEvents(test.app, events)).statusCode, 200)
  await scheduler.start()
  await scheduler.idle()

  const drive: Drive = { series: new Map(), daysBehindAt: [] }
  for (let minute = 0; minute <= hours * 60; minute += SCRAPE_EVERY_MIN) {
    await manual.advanceTo(T0_MS + minute * MINUTE_MS, () => scheduler.idle())
    await during(minute, { ...test, source: source! })
    const families = parsePrometheusText((await test.app.inject({ method: 'GET', url: '/metrics' })).body)
    for (const name of RULE_FAMILIES) {
      for (const sample of (families.get(name) as Family).samples) {
        const labels = { job: 'usage-batch', instance: '10.0.0.1:8080', ...sample.labels }
        const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(', ')}}`
        drive.series.set(key, [...(drive.series.get(key) ?? []), sample.value])
      }
    }
    const behind = (families.get(METRIC_NAMES.daysBehind) as Family).samples[0]!.value
    drive.daysBehindAt.push({ minute, value: behind })
  }
  return drive
}

/** A promtool unit test over the driven series (each scrape held for its 15 one-minute samples). */
export function promtoolTest(t: Test, drive: Drive, name: string, checks: Record<string, unknown>): string {
  const hold = (values: number[]) => values.map((v) => `${v}x${SCRAPE_EVERY_MIN - 1}`).join(' ')
  // Of usage_batch_runs_total the rules read only the failed runs; the other statuses would only slow promtool down.
  const read = [...drive.series].filter(([series]) => !series.startsWith(`${METRIC_NAMES.batchRuns}{`) || series.includes('status="failed"'))
  const input = read.map(([series, values]) => ({ series, values: hold(values) }))
  const scrapes = drive.daysBehindAt.length
  input.push({ series: 'up{job="usage-batch", instance="10.0.0.1:8080"}', values: `1x${scrapes * SCRAPE_EVERY_MIN - 1}` })
  const file = join(t.testdir({}), 'driven.test.yaml')
  writeFileSync(file, stringify({ rule_files: [RULES], evaluation_interval: '1m', tests: [{ name, interval: '1m', input_series: input, ...checks }] }))
  return file
}
