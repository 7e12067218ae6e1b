// Alerts end to end: a webhook receiver on 127.0.0.1 gets each kind once, with retries through 500s.
import t, { type Test } from 'tap'
import pino from 'pino'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fixedClock } from '../../src/clock.js'
import { openSqliteStore, type SqliteStore } from '../../src/db/sqlite/store.js'
import type { BatchRunRow } from '../../src/db/store.js'
import { createAlerting, type AlertingDeps } from '../../src/alerts/alerting.js'
import { deliverAlert } from '../../src/alerts/delivery.js'

const log = pino({ level: 'silent' })
/** 2026-11-28 13:00 Warsaw: yesterday is 11-27. */
const NOW = Date.parse('2026-11-28T12:00:00Z')

interface Receiver {
  url: string
  bodies: Array<Record<string, unknown>>
  /** Requests answered so far, failures included. */
  hits: () => number
}

/** A webhook that answers `failFirst` requests with 500, then 200, recording accepted bodies. */
async function receiver(t: Test, failFirst = 0): Promise<Receiver> {
  const bodies: Array<Record<string, unknown>> = []
  let hits = 0
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = ''
    req.on('data', (c) => (data += c))
    req.on('end', () => {
      hits += 1
      if (hits <= failFirst) {
        res.statusCode = 500
        res.end('try later')
        return
      }
      t.equal(req.headers['content-type'], 'application/json')
      bodies.push(JSON.parse(data) as Record<string, unknown>)
      res.end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies, hits: () => hits }
}

async function addRun(
  store: SqliteStore,
  date: string,
  status: 'succeeded' | 'failed' | 'succeeded_with_warnings',
  startedAt = '2026-11-28T11:00:00.000Z',
): Promise<BatchRunRow> {
  const { run } = await store.runs.claim({ date, trigger: 'api', dataSource: 'sqlite', startedAt, owner: 'test' })
  return store.runs.finish(run.id, { status, finished_at: startedAt, duration_ms: 1, ...(status === 'failed' ? { error_message: 'boom' } : {}) })
}

function addDaily(store: SqliteStore, client: string, date: string, costNanoUsd: number, plnNull = false): void {
  store.db.$client
    .prepare(
      `INSERT INTO client_daily_usage (client_org_id, usage_date, total_tokens, input_tokens, output_tokens, total_requests,
        raw_cost_nano_usd, markup_cost_nano_usd, markup_cost_nano_pln, markup_rate, data_source, batch_run_id, created_at, updated_at,
        primary_model, unique_users)
       VALUES (?, ?, 1, 1, 0, 1, ?, ?, ?, '1', 'sqlite', 1, 'x', 'x', 'm', 1)`,
    )
    .run(client, date, costNanoUsd, costNanoUsd, plnNull ? null : costNanoUsd * 4)
}

function dates(from: string, to: string): string[] {
  const out: string[] = []
  for (let d = Date.parse(from + 'T00:00:00Z'); d <= Date.parse(to + 'T00:00:00Z'); d += 86_400_000) out.push(new Date(d).toISOString().slice(0, 10))
  return out
}

function setupStore(t: Test): SqliteStore {
  const store = openSqliteStore({ path: ':memory:' })
  t.teardown(() => store.close())
  return store
}

function deps(store: SqliteStore, url: string | undefined, extra: Partial<AlertingDeps> = {}): AlertingDeps & { sleeps: number[] } {
  const sleeps: number[] = []
  return {
    store,
    clock: fixedClock(NOW),
    log,
    timeZone: 'Europe/Warsaw',
    webhookUrl: url,
    spikeFactor: 5,
    catchupDays: 7,
    lookbackDays: 2,
    delivery: { sleep: async (ms) => void sleeps.push(ms), baseDelayMs: 100, maxAttempts: 4 },
    sleeps,
    ...extra,
  }
}

/**
 * The ledger and summaries of a service running since 2026-10-25: every day succeeded except
 * 11-15 (never succeeded; past catch-up since 11-20) and 11-26 (its last run failed). 11-24 and
 * 11-26 have no PLN; only 11-24 is old enough to tell. Client `spiky` spends 10× its usual on 11-27.
 */
async function scenario(store: SqliteStore): Promise<void> {
  for (const d of dates('2026-10-25', '2026-11-27')) {
    if (d === '2026-11-15') await addRun(store, d, 'failed', '2026-11-16T11:00:00.000Z')
    else if (d === '2026-11-26') {
      await addRun(store, d, 'failed')
      addDaily(store, 'steady', d, 1_000_000_000, true)
    } else {
      await addRun(store, d, d === '2026-11-24' ? 'succeeded_with_warnings' : 'succeeded')
      addDaily(store, 'steady', d, 1_000_000_000, d === '2026-11-24')
      addDaily(store, 'spiky', d, d === '2026-11-27' ? 10_000_000_000 : 1_000_000_000)
    }
  }
}

t.test('each alert kind reaches the webhook once, through retries, and is not resent after a restart', async (t) => {
  const store = setupStore(t)
  await scenario(store)
  const hook = await receiver(t, 2)
  const d = deps(store, hook.url)
  const alerting = createAlerting(d)

  const report = await alerting.evaluateAlerts()
  const keys = report.alerts.map((a) => `${a.kind}|${a.date}|${a.client_org_id ?? ''}`).sort()
  t.same(keys, [
    'cost_spike|2026-11-27|spiky',
    'day_without_success|2026-11-15|',
    'pln_missing|2026-11-24|',
    'run_failed|2026-11-15|',
    'run_failed|2026-11-26|',
  ])
  t.ok(report.alerts.every((a) => a.outcome === 'sent'))
  t.equal(hook.bodies.length, 5)
  t.equal(hook.hits(), 7, 'two answers of 500 were retried')
  t.same(d.sleeps, [100, 200], 'exponential backoff')

  const spike = hook.bodies.find((b) => b.kind === 'cost_spike')!
  t.match(spike, { kind: 'cost_spike', date: '2026-11-27', client_org_id: 'spiky', text: /spiky spent 10\.00 USD/ })
  t.match(spike.details, { markup_cost_usd: 10, baseline_usd: 1, threshold_factor: 5 })
  const runFailed = hook.bodies.find((b) => b.kind === 'run_failed' && b.date === '2026-11-26')!
  t.match(runFailed, { text: /2026-11-26 failed.*boom/, details: { error_message: 'boom' } })
  t.notOk('client_org_id' in runFailed)

  // Same process again, then a "restarted" one on the same database: nothing new is sent.
  const again = (await alerting.evaluateAlerts()).alerts
  t.equal(again.length, 5)
  t.ok(again.every((a) => a.outcome === 'duplicate'))
  const restarted = createAlerting(deps(store, hook.url))
  const afterRestart = (await restarted.evaluateAlerts()).alerts
  t.equal(afterRestart.length, 5)
  t.ok(afterRestart.every((a) => a.outcome === 'duplicate'))
  t.equal(await restarted.alertOnRun(await addRun(store, '2026-11-26', 'failed')), 'duplicate', 'one alert per condition')
  t.equal(hook.bodies.length, 5)
})

t.test('alertOnRun posts a failed run at once and ignores others', async (t) => {
  const store = setupStore(t)
  const hook = await receiver(t)
  const alerting = createAlerting(deps(store, hook.url))
  t.equal(await alerting.alertOnRun(await addRun(store, '2026-11-27', 'succeeded')), 'not_failed')
  t.equal(await alerting.alertOnRun(await addRun(store, '2026-11-27', 'failed')), 'sent')
  t.match(hook.bodies, [{ kind: 'run_failed', date: '2026-11-27' }])
  // A later success resolves it: the periodic evaluation does not report it.
  await addRun(store, '2026-11-27', 'succeeded')
  t.same((await alerting.evaluateAlerts()).alerts, [])
})

t.test('an unreachable webhook: logged, never thrown, retried at the next evaluation', async (t) => {
  const store = setupStore(t)
  await addRun(store, '2026-11-27', 'failed')
  const hook = await receiver(t, 1_000)
  const d = deps(store, hook.url)
  const alerting = createAlerting(d)
  t.same((await alerting.evaluateAlerts()).alerts.map((a) => a.outcome), ['failed'])
  t.equal(hook.hits(), 4, 'every attempt made')
  t.same(d.sleeps, [100, 200, 400])
  t.same((await alerting.evaluateAlerts()).alerts.map((a) => a.outcome), ['failed'], 'not recorded as sent')
  t.equal(hook.hits(), 8)

  // A closed port (connection refused) is an error too, not an exception.
  const closed = await deliverAlert({ url: 'http://127.0.0.1:9/none', log, maxAttempts: 2, sleep: async () => {} }, { kind: 'run_failed', date: '2026-11-27', text: 'x', details: {} })
  t.match(closed, { ok: false, attempts: 2 })
  // A 4xx other than 429 is final: the receiver will not change its mind.
  const fetch400 = (async () => new Response('no', { status: 400 })) as typeof fetch
  t.match(await deliverAlert({ url: 'http://127.0.0.1:1/x', log, fetch: fetch400, sleep: async () => {} }, { kind: 'run_failed', date: 'd', text: 'x', details: {} }), {
    ok: false,
    attempts: 1,
    error: 'HTTP 400',
  })
})

t.test('without ALERT_WEBHOOK_URL conditions are evaluated and nothing is sent', async (t) => {
  const store = setupStore(t)
  await addRun(store, '2026-11-27', 'failed')
  const report = await createAlerting(deps(store, undefined)).evaluateAlerts()
  t.same(report.alerts.map((a) => a.outcome), ['disabled'])
  t.equal(await store.alerts.wasSent('run_failed|2026-11-27|'), false)
  t.equal(store.db.$client.prepare('SELECT count(*) FROM alerts_sent').pluck().get(), 0)
})

t.test('days inside catch-up, and days before the first run, raise no day_without_success', async (t) => {
  const store = setupStore(t)
  await addRun(store, '2026-11-18', 'succeeded')
  // 11-19 .. 11-27 have no run: 11-19 and 11-20 are past catch-up (yesterday 11-27 minus 7 days), the rest are not.
  const report = await createAlerting(deps(store, undefined)).evaluateAlerts()
  t.same(report.alerts.map((a) => `${a.kind} ${a.date}`), ['day_without_success 2026-11-19', 'day_without_success 2026-11-20'])
})
