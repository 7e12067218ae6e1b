// Money past 2^53 nano-units, end to end over HTTP on a real SQLite file: the reproductions of
// issue 13 (a day that used to fail with "nano amount exceeds 2^53"), totals past what SQLite's
// 64-bit SUM can add, and `?money=string`. Expected figures come from the test's own exact
// arithmetic (helpers/app.ts), never from src/money.ts.
import t from 'tap'
import type { App } from '../../src/app.js'
import { buildTestApp, expectNano, expectTimesRate, nanoText, postEvents, runBatch } from '../helpers/app.js'
import { event, type EventInput } from '../helpers/events.js'

const DAY = '2026-11-20'
const NEXT_DAY = '2026-11-21'
const RANGE = `from=${DAY}&to=${NEXT_DAY}`

function record(id: string, client: string, cost: string, date = DAY, user = 'u1', model = 'vendor/model'): EventInput {
  return event({ request_id: id, client_org_id: client, model, external_user: user, cost_usd: cost, timestamp: `${date}T10:00:00Z` })
}

async function put(app: App, url: string, payload: object) {
  const res = await app.inject({ method: 'PUT', url, payload })
  if (res.statusCode >= 300) throw new Error(`PUT ${url}: ${res.statusCode} ${res.body}`)
}

async function get(app: App, url: string) {
  const res = await app.inject({ url })
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`)
  return res
}

t.test('markup 10, a manual rate of 4.0 and one record of 250,000 USD: the day succeeds and every figure is exact', async (t) => {
  const { app, db } = await buildTestApp(t)
  await put(app, '/clients/whale/pricing', { markup_rate: '10', effective_from: '2026-11-01' })
  await put(app, `/usage/exchange-rates/${DAY}`, { rate: '4.0', note: 'agreed by hand' })
  t.equal((await postEvents(app, [record('w1', 'whale', '250000'), record('a1', 'acme', '0.000000150')])).statusCode, 200)

  const run = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(run.status, 'succeeded', 'the run succeeds (it failed with "nano amount exceeds 2^53" before)')
  t.same(run.warnings, [])
  t.equal(run.error_message, null)

  const raw = expectNano('250000')
  const markup = expectTimesRate(raw, '10')
  const pln = expectTimesRate(markup, '4.0')
  t.equal(pln, 10_000_000_000_000_000n, 'the PLN amount is past 2^53 nano-units')
  t.ok(pln > 2n ** 53n)
  const money = { raw_cost_usd: nanoText(raw), markup_cost_usd: nanoText(markup), markup_cost_pln: nanoText(pln) }

  const stored = db.$client
    .prepare('SELECT raw_cost_nano_usd, markup_cost_nano_usd, markup_cost_nano_pln FROM client_daily_usage WHERE client_org_id = ?')
    .safeIntegers(true)
    .get('whale')
  t.same(stored, { raw_cost_nano_usd: raw, markup_cost_nano_usd: markup, markup_cost_nano_pln: pln }, 'stored to the nano-unit')

  const daily = (await get(app, `/usage/clients/whale/daily?${RANGE}&money=string`)).json()
  t.match(daily.days, [{ usage_date: DAY, ...money, markup_rate: 10, exchange_rate_usd_pln: 4 }])
  t.equal(daily.days.length, 1)
  t.match(daily.totals, { ...money, days_with_usage: 1, days_missing_pln: 0 })

  const users = (await get(app, `/usage/clients/whale/users?${RANGE}&money=string`)).json()
  t.match(users.users, [{ external_user: 'u1', ...money, models: [{ model: 'vendor/model', ...money }] }])
  t.match(users.totals, money)
  const models = (await get(app, `/usage/clients/whale/models?${RANGE}&money=string`)).json()
  t.match(models.models, [{ model: 'vendor/model', ...money }])
  const clients = (await get(app, `/usage/clients?${RANGE}&money=string`)).json()
  t.match(
    clients.clients.find((c: { client_org_id: string }) => c.client_org_id === 'whale'),
    { ...money, days_with_usage: 1 },
  )
  t.match(clients.totals.markup_cost_pln, nanoText(pln + expectTimesRate(expectTimesRate(150n, '1.3'), '4.0')), 'totals over both clients')

  const summary = (await get(app, '/usage/clients/whale/summary?month=2026-11&money=string')).json()
  t.match(summary.totals, money)
  t.equal(summary.average_daily_cost_usd, money.markup_cost_usd)
  t.equal(summary.average_daily_cost_pln, money.markup_cost_pln)
  t.same(summary.highest_cost_day, { usage_date: DAY, markup_cost_usd: money.markup_cost_usd })
  t.match(summary.top_models, [{ model: 'vendor/model', ...money }])

  // Numbers by default: the nearest double to the exact decimal.
  const asNumbers = (await get(app, `/usage/clients/whale/daily?${RANGE}`)).json()
  t.equal(asNumbers.days[0].markup_cost_pln, 10_000_000)
  t.equal(asNumbers.days[0].raw_cost_usd, 250_000)

  const csv = (await get(app, `/usage/clients/whale/daily?${RANGE}&format=csv`)).body
  t.equal(csv.split('\r\n')[1], `${DAY},15,10,5,1,250000.000000000,2500000.000000000,10000000.000000000,10,4,${DAY},vendor/model,1`)
})

t.test('seven records of 1,000,000 USD at the default markup and no rate: exact, PLN waits for a rate', async (t) => {
  const { app } = await buildTestApp(t)
  await postEvents(app, Array.from({ length: 7 }, (_, i) => record(`m${i}`, 'big', '1000000')))
  const run = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(run.status, 'succeeded_with_warnings', 'it failed before: 9.1e15 nano-USD of markup is past 2^53')
  t.match(run.warnings, [/markup_cost_pln not computed/])
  t.equal(run.warnings.length, 1)

  const raw = expectNano('7000000')
  const markup = expectTimesRate(raw, '1.3')
  t.ok(markup > 2n ** 53n && raw < 2n ** 53n, 'the raw sum fits a double; its markup does not')
  const daily = (await get(app, `/usage/clients/big/daily?${RANGE}&money=string`)).json()
  t.match(daily.days, [{ raw_cost_usd: nanoText(raw), markup_cost_usd: nanoText(markup), markup_cost_pln: null, total_requests: 7 }])
  t.match(daily.totals, { raw_cost_usd: '7000000.000000000', markup_cost_usd: '9100000.000000000', markup_cost_pln: null, days_missing_pln: 1 })
  const csv = (await get(app, `/usage/clients/big/models?${RANGE}&format=csv`)).body
  t.equal(csv.split('\r\n')[1], 'vendor/model,105,70,35,7,7000000.000000000,9100000.000000000,')
})

t.test('sums over days past the 64-bit range are read exactly, in every read', async (t) => {
  const { app } = await buildTestApp(t)
  await put(app, '/clients/titan/pricing', { markup_rate: '10', effective_from: '2026-11-01' })
  const events: EventInput[] = []
  for (const date of [DAY, NEXT_DAY]) {
    await put(app, `/usage/exchange-rates/${date}`, { rate: '4' })
    // 150 records of 1,000,000 USD a day: 6e18 nano-PLN a day, within 64 bits; two days are not.
    for (let i = 0; i < 150; i++) events.push(record(`${date}-${i}`, 'titan', '1000000', date, `user${i % 3}`))
  }
  t.equal((await postEvents(app, events)).statusCode, 200)
  const runs = (await runBatch(app, { from: DAY, to: NEXT_DAY })).json().runs
  t.same(runs.map((r: { status: string }) => r.status), ['succeeded', 'succeeded'])

  const dayPln = expectTimesRate(expectTimesRate(150n * expectNano('1000000'), '10'), '4')
  t.equal(dayPln, 6_000_000_000_000_000_000n)
  const total = nanoText(2n * dayPln)
  t.ok(2n * dayPln > 2n ** 63n - 1n, 'the two-day PLN total is past int64')
  const markupTotal = nanoText(2n * expectTimesRate(150n * expectNano('1000000'), '10'))

  const reads = [
    `/usage/clients?${RANGE}&money=string`,
    `/usage/clients/titan/daily?${RANGE}&money=string`,
    `/usage/clients/titan/users?${RANGE}&money=string`,
    `/usage/clients/titan/models?${RANGE}&money=string`,
  ]
  for (const url of reads) {
    const body = (await get(app, url)).json()
    t.equal(body.totals.markup_cost_pln, total, `${url}: PLN total exact`)
    t.equal(body.totals.markup_cost_usd, markupTotal, `${url}: USD total exact`)
  }
  const clients = (await get(app, `/usage/clients?${RANGE}&money=string`)).json()
  t.match(clients.clients, [{ client_org_id: 'titan', markup_cost_pln: total, days_with_usage: 2 }], 'a grouped SUM past int64')
  const models = (await get(app, `/usage/clients/titan/models?${RANGE}&money=string`)).json()
  t.match(models.models, [{ model: 'vendor/model', markup_cost_pln: total, total_requests: 300 }])
  const users = (await get(app, `/usage/clients/titan/users?${RANGE}&money=string`)).json()
  t.equal(users.users.length, 3)
  t.same(
    users.users.map((u: { markup_cost_pln: string }) => u.markup_cost_pln),
    [0, 1, 2].map(() => nanoText((2n * dayPln) / 3n)),
    'each user: a third of it',
  )
  const summary = (await get(app, '/usage/clients/titan/summary?month=2026-11&money=string')).json()
  t.equal(summary.totals.markup_cost_pln, total)
  t.equal(summary.average_daily_cost_pln, nanoText(dayPln))
  const csv = (await get(app, `/usage/clients?${RANGE}&format=csv`)).body
  t.match(csv, `titan,4500,3000,1500,300,300000000.000000000,${markupTotal},${total},2\r\n`)
  const asNumbers = (await get(app, `/usage/clients?${RANGE}`)).json()
  t.equal(asNumbers.totals.markup_cost_pln, 12_000_000_000, 'numbers by default: the nearest double')
})

t.test("today: live figures past 2^53 nano-units are exact with ?money=string", async (t) => {
  const { app } = await buildTestApp(t)
  const today = '2026-11-28'
  await put(app, '/clients/whale/pricing', { markup_rate: '10', effective_from: '2026-11-01' })
  await put(app, `/usage/exchange-rates/${today}`, { rate: '4.0' })
  await postEvents(app, [record('t1', 'whale', '250000', today), record('t2', 'whale', '0.000000001', today, 'u2')])
  const raw = expectNano('250000.000000001')
  const markup = expectTimesRate(raw, '10')
  const pln = expectTimesRate(markup, '4.0')
  const live = (await get(app, '/usage/clients/whale/today?money=string')).json()
  t.match(live, { raw_cost_usd: nanoText(raw), markup_cost_usd: nanoText(markup), markup_cost_pln: nanoText(pln), unique_users: 2 })
  t.match(live.models, [{ model: 'vendor/model', markup_cost_pln: nanoText(pln) }])
  t.equal(live.markup_cost_pln, '10000000.000000040')
})

t.test('?money takes number or string only', async (t) => {
  const { app } = await buildTestApp(t)
  const bad = await app.inject({ url: `/usage/clients/acme/daily?${RANGE}&money=float` })
  t.equal(bad.statusCode, 400)
  t.equal((await app.inject({ url: '/usage/clients/acme/today?money=bogus' })).statusCode, 400)
  t.equal((await app.inject({ url: '/usage/clients/acme/today?_=1700000000' })).statusCode, 200, '/today still lets other parameters through')
  t.equal((await app.inject({ url: `/usage/clients/acme/daily?${RANGE}&money=number` })).statusCode, 200)
})
