// The operator's tools on what we ship: `promtool check metrics` on a real scrape, `promtool check
// rules` and `promtool test rules` on deploy/, and the rules fed with the series of a real service
// driven through 48 hours by its own scheduler (healthy, then with a failing tick).
import t, { type Test } from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, stringify } from 'yaml'
import pino from 'pino'
import { fixedClock } from '../../src/clock.js'
import { METRIC_NAMES } from '../../src/metrics.js'
import type { RateProvider } from '../../src/rates/types.js'
import { createScheduler } from '../../src/scheduler/scheduler.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch, type TestApp } from '../helper.js'
import { promtool, promtoolUnavailable } from '../helpers/promtool.js'
import { manualTimers } from '../support/timers.js'
import { failingSource, pingCheckedSource, startInfluxPing } from './fixtures.js'
import { parsePrometheusText, type Family } from './prometheus.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const RULES = join(root, 'deploy/prometheus-rules.yaml')
const RULE_TESTS = join(root, 'deploy/prometheus-rules.test.yaml')
const skip = promtoolUnavailable() ?? false

type Rule = { alert: string; expr: string; annotations: Record<string, string> }
const alertRules = () => (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules)

const okRates: RateProvider = {
  async resolveUsdPlnRate(date) {
    return {
      ok: true,
      rate: { usage_date: date, rate: '4.0341', effective_date: date, table_no: '1/A/NBP/2026', source: 'nbp', policy: 'previous-business-day', fetched_at: '2026-01-01T00:00:00.000Z' },
    }
  },
}

t.test('promtool check metrics on a real scrape: only the contract name usage_batch_days_behind is remarked on', { skip }, async (t) => {
  const influx = await startInfluxPing()
  t.teardown(() => influx.close())
  const { app } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url },
    dbCreatedMs: DEFAULT_NOW_MS - 30 * 86_400_000,
    source: (db) => pingCheckedSource(createSqliteSource({ db, clock: fixedClock(DEFAULT_NOW_MS), path: db.$client.name }), influx.url),
  })
  await postEvents(app, [
    { request_id: 'r1', client_org_id: 'acme', model: 'm1', input_tokens: 1, output_tokens: 1, cost_usd: '0.01', timestamp: '2026-11-26T10:00:00Z' },
  ])
  await runBatch(app, { from: '2026-11-24', to: '2026-11-26' })
  await app.inject({ method: 'GET', url: '/no/such/route' })
  const scrape = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const families = parsePrometheusText(scrape)
  t.ok(families.size > 30, `a full scrape (${families.size} families)`)
  t.ok(families.has(METRIC_NAMES.influxUp) && families.has(METRIC_NAMES.daysBehind))

  const { status, output } = promtool(['check', 'metrics'], scrape)
  // SPEC §9 fixes the name usage_batch_days_behind; promtool reads "days" as a time unit, but the gauge
  // counts dates, it measures no duration. That remark, and nothing else, is expected.
  t.same(
    output.split('\n').filter(Boolean),
    ['usage_batch_days_behind use base unit "seconds" instead of "days"'],
    `promtool check metrics said:\n${output}`,
  )
  t.equal(status, 3, 'promtool exits 3 on lint remarks')
  // Without the contract name the scrape is clean.
  const rest = scrape.replace(/^(# (HELP|TYPE) )?usage_batch_days_behind\b.*\n/gm, '')
  t.notMatch(rest, /usage_batch_days_behind/)
  const clean = promtool(['check', 'metrics'], rest)
  t.equal(clean.output, '', 'no other remark')
  t.equal(clean.status, 0)
})

t.test('promtool check rules and promtool test rules on deploy/', { skip }, async (t) => {
  const rules = alertRules()
  t.ok(rules.length >= 6)
  const check = promtool(['check', 'rules', RULES])
  t.equal(check.status, 0, check.output)
  t.match(check.output, `SUCCESS: ${rules.length} rules found`)

  const tests = parse(readFileSync(RULE_TESTS, 'utf8')) as { tests: Array<{ name: string }> }
  const names = tests.tests.map((x) => x.name)
  for (const required of ['a healthy day, hour by hour, for 48 hours', 'first failure after a restart', 'a failure before the restarted pod\'s first scrape']) {
    t.ok(names.includes(required), `the unit tests include "${required}"`)
  }
  const run = promtool(['test', 'rules', RULE_TESTS])
  t.equal(run.status, 0, run.output)
  t.match(run.output, /SUCCESS/)
})

/** Families the rules read, as promtool input series labelled like a scrape. */
const RULE_FAMILIES = [METRIC_NAMES.batchRuns, METRIC_NAMES.batchRunsWithClientErrors, METRIC_NAMES.daysBehind, METRIC_NAMES.datesWithoutPln]
const SCRAPE_EVERY_MIN = 15
const HOURS = 48
/** 2026-11-27 00:00 Europe/Warsaw: time 0 of the generated promtool tests. */
const T0_MS = Date.parse('2026-11-26T23:00:00Z')
const MINUTE_MS = 60_000

interface Drive {
  /** Per series (as promtool writes it), one value per scrape. */
  series: Map<string, number[]>
  daysBehindAt: Array<{ minute: number; value: number }>
}

/**
 * A real app and scheduler (manual timers on a fixed clock) from 2026-11-27 00:00 Warsaw for 48 h,
 * scraped every 15 minutes. `during` runs at each scrape instant before the scrape (a failing tick,
 * an admin rerun). Nothing in the service changes between two scrape instants (the clock jumps), so
 * a scrape's value also stands for the minutes until the next one.
 */
async function driveService(t: Test, during: (minute: number, test: TestApp & { source: ReturnType<typeof failingSource> }) => Promise<void>): Promise<Drive> {
  let source: ReturnType<typeof failingSource> | undefined
  const test = await buildTestApp(t, {
    nowMs: T0_MS,
    dbCreatedMs: T0_MS - 30 * 86_400_000,
    rates: okRates,
    source: (db) => (source = failingSource(createSqliteSource({ db, clock: fixedClock(T0_MS), path: db.$client.name }))),
  })
  const manual = manualTimers(test.clock)
  const scheduler = createScheduler({
    batch: test.app.services.batch,
    db: test.db,
    clock: test.clock,
    log: pino({ level: 'silent' }),
    cron: test.config.BATCH_SCHEDULE_CRON,
    timeZone: test.config.BUSINESS_TIMEZONE,
    lookbackDays: test.config.BATCH_LOOKBACK_DAYS,
    catchupDays: test.config.BATCH_CATCHUP_DAYS,
    timers: manual.timers,
  })
  test.app.services.scheduler = scheduler
  t.teardown(() => scheduler.stop())
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
  scheduler.start()
  await scheduler.idle()

  const drive: Drive = { series: new Map(), daysBehindAt: [] }
  for (let minute = 0; minute <= HOURS * 60; minute += SCRAPE_EVERY_MIN) {
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
function promtoolTest(t: Test, drive: Drive, name: string, checks: Record<string, unknown>): string {
  const hold = (values: number[]) => values.map((v) => `${v}x${SCRAPE_EVERY_MIN - 1}`).join(' ')
  const input = [...drive.series].map(([series, values]) => ({ series, values: hold(values) }))
  const scrapes = drive.daysBehindAt.length
  input.push({ series: 'up{job="usage-batch", instance="10.0.0.1:8080"}', values: `1x${scrapes * SCRAPE_EVERY_MIN - 1}` })
  const file = join(t.testdir({}), 'driven.test.yaml')
  writeFileSync(file, stringify({ rule_files: [RULES], evaluation_interval: '1m', tests: [{ name, interval: '1m', input_series: input, ...checks }] }))
  return file
}

t.test('a real service for 48 hours with the daily 13:00 tick: days_behind is 0 at every hour, and no alert is ever pending', { skip }, async (t) => {
  const drive = await driveService(t, async () => undefined)
  const hourly = drive.daysBehindAt.filter((s) => s.minute % 60 === 0)
  t.equal(hourly.length, HOURS + 1)
  t.same(hourly.filter((s) => s.value !== 0), [], 'usage_batch_days_behind is 0 at every hour')
  t.same(drive.daysBehindAt.filter((s) => s.value !== 0), [], 'and at every scrape')
  const scheduled = drive.series.get('usage_batch_runs_total{job="usage-batch", instance="10.0.0.1:8080", status="succeeded", trigger="schedule"}')!
  t.equal(scheduled.at(-1), 6, 'two ticks of three runs each (yesterday and 2 lookback days)')
  t.equal(drive.series.get('usage_batch_runs_total{job="usage-batch", instance="10.0.0.1:8080", status="succeeded", trigger="catchup"}')!.at(-1), 7, 'the start-up catch-up')

  const file = promtoolTest(t, drive, 'a real healthy service, 48 hours', {
    promql_expr_test: [{ expr: `count_over_time(ALERTS[${HOURS}h])`, eval_time: `${HOURS}h`, exp_samples: [] }],
  })
  const run = promtool(['test', 'rules', file])
  t.equal(run.status, 0, run.output)
})

t.test('a real service whose second tick fails: UsageBatchRunFailed at once, UsageBatchBehind after 2 hours, both gone after the rerun', { skip }, async (t) => {
  const TICK = 24 * 60 + 13 * 60
  const drive = await driveService(t, async (minute, test) => {
    if (minute === TICK - SCRAPE_EVERY_MIN) test.source.failing = true
    if (minute === TICK + SCRAPE_EVERY_MIN) test.source.failing = false
    // An admin reruns the failed day at 16:00.
    if (minute === TICK + 180) t.equal((await runBatch(test.app, { date: '2026-11-27' })).json().runs[0].status, 'succeeded')
  })
  const behind = drive.daysBehindAt.filter((s) => s.value !== 0).map((s) => s.minute)
  t.same([behind[0], behind.at(-1)], [TICK, TICK + 165], 'the day is owed from the tick until the rerun')
  t.ok(drive.daysBehindAt.every((s) => s.value <= 1))

  const rules = new Map(alertRules().map((r) => [r.alert, r]))
  const annotations = (alert: string, values: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(rules.get(alert)!.annotations).map(([k, v]) => [k, v.replace(/\{\{ \$value \}\}/g, values.value ?? '').replace(/\{\{ \$labels\.trigger \}\}/g, values.trigger ?? '')]),
    )
  const at = (minutes: number) => `${Math.floor(minutes / 60)}h${minutes % 60}m`
  const file = promtoolTest(t, drive, 'a real service with a failing tick', {
    alert_rule_test: [
      { eval_time: at(TICK - 5), alertname: 'UsageBatchRunFailed', exp_alerts: [] },
      {
        eval_time: at(TICK + 5),
        alertname: 'UsageBatchRunFailed',
        exp_alerts: [
          {
            exp_labels: { severity: 'critical', job: 'usage-batch', status: 'failed', trigger: 'schedule' },
            exp_annotations: annotations('UsageBatchRunFailed', { trigger: 'schedule' }),
          },
        ],
      },
      { eval_time: at(TICK + 115), alertname: 'UsageBatchBehind', exp_alerts: [] },
      {
        eval_time: at(TICK + 125),
        alertname: 'UsageBatchBehind',
        exp_alerts: [{ exp_labels: { severity: 'critical', job: 'usage-batch' }, exp_annotations: annotations('UsageBatchBehind', { value: '1' }) }],
      },
      { eval_time: at(TICK + 185), alertname: 'UsageBatchBehind', exp_alerts: [] },
    ],
    promql_expr_test: [
      { expr: `count_over_time(ALERTS{alertname!~"UsageBatchRunFailed|UsageBatchBehind"}[${HOURS}h])`, eval_time: `${HOURS}h`, exp_samples: [] },
    ],
  })
  const run = promtool(['test', 'rules', file])
  t.equal(run.status, 0, run.output)
})
