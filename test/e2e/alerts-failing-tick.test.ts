// A real service whose second daily tick fails, scraped every 15 minutes: UsageBatchRunFailed fires
// at once, UsageBatchBehind after 2 hours, both clear after an admin's rerun, nothing else fires.
import t from 'tap'
import { promtool, promtoolUnavailable } from '../helpers/promtool.js'
import { alertRules, driveService, promtoolTest, SCRAPE_EVERY_MIN } from '../helpers/driven-service.js'
import { runBatch } from '../helpers/app.js'

/** The second tick (2026-11-28 13:00 Warsaw) and a few hours after it. */
const HOURS = 42

// Hours of ticks scraped, then promtool evaluating every minute of them: well under a minute alone,
// several beside the rest of the suite on a shared machine.
t.setTimeout(360_000)

t.test('a real service whose second tick fails: UsageBatchRunFailed at once, UsageBatchBehind after 2 hours, both gone after the rerun', { skip: promtoolUnavailable() ?? false }, async (t) => {
  const TICK = 24 * 60 + 13 * 60
  const drive = await driveService(t, HOURS, async (minute, test) => {
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
