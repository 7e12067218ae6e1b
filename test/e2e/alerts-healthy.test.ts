// A real service through 48 hours of its daily 13:00 tick, scraped every 15 minutes: the owed-days
// gauge is 0 at every hour, and the alert rules of deploy/ (promtool) never even go pending on it.
import t from 'tap'
import { promtool, promtoolUnavailable } from '../helpers/promtool.js'
import { driveService, promtoolTest } from '../helpers/driven-service.js'

const HOURS = 48

// Hours of ticks scraped, then promtool evaluating every minute of them: well under a minute alone,
// several beside the rest of the suite on a shared machine.
t.setTimeout(360_000)

t.test('a real service for 48 hours with the daily 13:00 tick: days_behind is 0 at every hour, and no alert is ever pending', { skip: promtoolUnavailable() ?? false }, async (t) => {
  const drive = await driveService(t, HOURS, async () => undefined)
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
