// The spike rule: a synthetic spike fires; ordinary weekly rhythm, thin history and zero baselines do not.
import t, { type Test } from 'tap'
import { openSqliteStore, type SqliteStore } from '../../src/db/sqlite/store.js'
import { costSpikes, median } from '../../src/alerts/rules.js'

const USD = 1_000_000_000

function insert(store: SqliteStore, client: string, date: string, cost: number): void {
  store.db.$client
    .prepare(
      `INSERT INTO client_daily_usage (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests,
        raw_cost_nano_usd, markup_cost_nano_usd, markup_cost_nano_pln, markup_rate, data_source, batch_run_id, created_at, updated_at,
        primary_model, unique_users)
       VALUES (?, ?, 1, 1, 0, 1, ?, ?, NULL, '1', 'sqlite', 1, 'x', 'x', 'm', 1)`,
    )
    .run(client, date, cost, cost)
}

/** 2026-10-05 is a Monday; 42 days of history and evaluation. */
function days(n = 42): Array<{ date: string; weekday: number }> {
  return Array.from({ length: n }, (_, i) => {
    const d = new Date(Date.UTC(2026, 9, 5 + i))
    return { date: d.toISOString().slice(0, 10), weekday: d.getUTCDay() }
  })
}

function freshStore(t: Test): SqliteStore {
  const store = openSqliteStore({ path: ':memory:' })
  t.teardown(() => store.close())
  return store
}

t.test('weekly rhythm is not a spike, even a weekend six times the weekdays', async (t) => {
  const store = freshStore(t)
  const all = days()
  for (const { date, weekday } of all) {
    const weekend = weekday === 0 || weekday === 6
    insert(store, 'office', date, weekend ? 0.05 * USD : 1 * USD)
    insert(store, 'weekend-batch', date, weekend ? 6 * USD : 1 * USD)
  }
  const lastTwoWeeks = all.slice(-14).map((d) => d.date)
  // Meaningful: against the plain 28-day median a weekend day of weekend-batch is above 5×.
  const history = all.slice(-35, -7).map(({ weekday }) => (weekday === 0 || weekday === 6 ? 6 : 1))
  t.ok(6 > 5 * median(history), 'a plain 28-day median would call every weekend a spike')
  t.same(await costSpikes(store, lastTwoWeeks, { factor: 5 }), [])
})

t.test('a synthetic spike fires; a rise below the factor does not', async (t) => {
  const store = freshStore(t)
  const all = days()
  const spikeDay = all[all.length - 2]!.date
  const mildDay = all[all.length - 1]!.date
  for (const { date, weekday } of all) {
    const weekend = weekday === 0 || weekday === 6
    const cost = date === spikeDay ? 8 * USD : date === mildDay ? 4 * USD : weekend ? 0.3 * USD : 1 * USD
    insert(store, 'acme', date, cost)
  }
  const alerts = await costSpikes(store, [spikeDay, mildDay], { factor: 5 })
  t.equal(alerts.length, 1)
  t.match(alerts[0], { kind: 'cost_spike', date: spikeDay, client_org_id: 'acme', details: { baseline_usd: 1, markup_cost_usd: 8 } })
  t.equal((await costSpikes(store, [spikeDay], { factor: 10 })).length, 0, 'the factor is honoured')
})

t.test('too little history, or a zero baseline, says nothing', async (t) => {
  const store = freshStore(t)
  const all = days(30)
  const last = all[all.length - 1]!.date
  // Six days of history only.
  for (const { date } of all.slice(-7, -1)) insert(store, 'new-client', date, 1 * USD)
  insert(store, 'new-client', last, 100 * USD)
  // Free models for four weeks, then a paid day.
  for (const { date } of all.slice(0, -1)) insert(store, 'free-tier', date, 0)
  insert(store, 'free-tier', last, 1 * USD)
  t.same(await costSpikes(store, [last], { factor: 5 }), [])
  // With a seventh day the new client's spike is seen.
  insert(store, 'new-client', all[all.length - 8]!.date, 1 * USD)
  t.same((await costSpikes(store, [last], { factor: 5 })).map((a) => a.client_org_id), ['new-client'])
})
