// The operator's tools on what we ship: `promtool check metrics` on a real scrape, `promtool check
// rules` and `promtool test rules` on deploy/. The rules fed with the scrapes of a real service:
// alerts-healthy.test.ts and alerts-failing-tick.test.ts.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { fixedClock } from '../../src/clock.js'
import { METRIC_NAMES } from '../../src/metrics.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch } from '../helper.js'
import { promtool, promtoolUnavailable } from '../helpers/promtool.js'
import { alertRules, RULES } from './driven-service.js'
import { pingCheckedSource, startInfluxPing } from './fixtures.js'
import { parsePrometheusText } from './prometheus.js'

const RULE_TESTS = join(fileURLToPath(new URL('../../', import.meta.url)), 'deploy/prometheus-rules.test.yaml')
const skip = promtoolUnavailable() ?? false

// promtool evaluates 48 hours minute by minute for the healthy-day test: slow beside the rest of the suite.
t.setTimeout(300_000)

t.test('promtool check metrics on a real scrape: only the contract name usage_batch_days_behind is remarked on', { skip }, async (t) => {
  const influx = await startInfluxPing()
  t.teardown(() => influx.close())
  const { app } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url },
    dbCreatedMs: DEFAULT_NOW_MS - 30 * 86_400_000,
    source: (store) => pingCheckedSource(createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS) }), influx.url),
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
