// PLN in the batch, through HTTP: priced at the legal NBP rate, null (never guessed) when NBP is
// down, filled by a later run, and overridden by a manual rate that no fetch replaces.
import t, { type Test } from 'tap'
import { buildTestApp, expectNano, expectTimesRate, nanoText, postEvents, runBatch, summaryRows } from '../helper.js'
import type { RatePolicy } from '../../src/db/enums.js'
import { deadPort, startFakeNbp, type FakeNbp, type FakeNbpOptions } from '../helpers/fake-nbp.js'

// Thursday 12 November 2026: Wednesday 11 November is Independence Day, so the last table before
// it is Tuesday 10 November's. The fake publishes these mids for those dates.
const DAY = '2026-11-12'
const MIDS = { '2026-11-09': 3.9876, '2026-11-10': 4.0341, '2026-11-12': 4.1111 }

/** The production rate provider and NBP client (createServices), pointed at the fake NBP. */
async function setup(t: Test, opts: { fake?: FakeNbpOptions; baseUrl?: (nbp: FakeNbp) => string; policy?: RatePolicy; timeoutMs?: number } = {}) {
  const nbp = await startFakeNbp({ mids: MIDS, ...opts.fake })
  t.teardown(() => nbp.close())
  const built = await buildTestApp(t, {
    env: {
      EXCHANGE_RATE_POLICY: opts.policy ?? 'previous-business-day',
      NBP_API_URL: opts.baseUrl ? opts.baseUrl(nbp) : nbp.baseUrl,
      NBP_TIMEOUT_MS: String(opts.timeoutMs ?? 2_000),
      NBP_MAX_RETRIES: '2',
    },
    deps: { nbp: { baseDelayMs: 1, sleep: async () => {} } },
  })
  return { ...built, nbp }
}

const events = [
  { cost: '0.000000150', user: 'a' },
  { cost: '1.234567891', user: 'a' },
  { cost: '12.5', user: 'b' },
  { cost: '0.3', user: 'b' },
].map((e, i) => ({
  request_id: `r${i}`,
  client_org_id: 'acme',
  external_user: e.user,
  model: 'm',
  input_tokens: 10,
  output_tokens: 1,
  cost_usd: e.cost,
  timestamp: `${DAY}T1${i}:00:00+01:00`,
}))

t.test('PLN is markup × the previous business day\'s NBP mid, half-even, with its evidence', async (t) => {
  const { app, db } = await setup(t)
  await postEvents(app, events)
  const run = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(run.status, 'succeeded')
  t.equal(run.exchange_rate_usd_pln, 4.0341)
  t.same(run.warnings, [])

  const raw = events.map((e) => expectNano(e.cost_usd)).reduce((a, b) => a + b, 0n)
  const markup = expectTimesRate(raw, '1.3')
  const pln = expectTimesRate(markup, '4.0341')
  const day = (await app.inject({ url: `/usage/clients/acme/daily?from=${DAY}&to=${DAY}` })).json().days[0]
  t.equal(day.markup_cost_pln, Number(nanoText(pln)), `PLN ${nanoText(pln)}`)
  t.equal(day.exchange_rate_usd_pln, 4.0341)
  t.equal(day.exchange_rate_date, '2026-11-10', 'Independence Day has no table; Tuesday\'s is used')
  // Every stored row (user×model too) carries its own PLN from its own markup.
  for (const row of summaryRows(db, 'client_user_daily_usage', DAY)) {
    t.equal(BigInt(row.markup_cost_nano_pln as number), expectTimesRate(BigInt(row.markup_cost_nano_usd as number), '4.0341'))
    t.equal(row.exchange_rate_usd_pln, '4.0341')
    t.equal(row.exchange_rate_date, '2026-11-10')
  }

  const rates = (await app.inject({ url: `/usage/exchange-rates?from=${DAY}&to=${DAY}` })).json().rates
  t.match(rates, [{ usage_date: DAY, rate: 4.0341, effective_date: '2026-11-10', table_no: /^\d+\/A\/NBP\/2026$/, source: 'nbp', policy: 'previous-business-day' }])
})

t.test('same-day policy on a business day uses that day\'s own table', async (t) => {
  const { app } = await setup(t, { policy: 'same-day' })
  await postEvents(app, events)
  const run = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(run.exchange_rate_usd_pln, 4.1111)
})

for (const fault of ['refused', 'error500', 'hang', 'garbage'] as const) {
  t.test(`NBP ${fault}: USD rows written, PLN null, warnings; NBP back → rerun fills PLN`, async (t) => {
    const dead = fault === 'refused' ? await deadPort() : 0
    const { app, db, nbp } = await setup(t, {
      fake: fault === 'refused' ? {} : { mode: fault },
      baseUrl: fault === 'refused' ? () => `http://127.0.0.1:${dead}/api` : undefined,
      timeoutMs: 200,
    })
    await postEvents(app, events)
    const run = (await runBatch(app, { date: DAY })).json().runs[0]
    t.equal(run.status, 'succeeded_with_warnings')
    t.equal(run.exchange_rate_usd_pln, null)
    t.match(run.warnings.join(' '), /markup_cost_pln not computed/)
    const rows = summaryRows(db, 'client_daily_usage', DAY)
    t.equal(rows.length, 1)
    t.equal(rows[0]!.markup_cost_nano_pln, null, 'no invented rate')
    t.ok((rows[0]!.markup_cost_nano_usd as number) > 0, 'USD written')
    const health = (await app.inject({ url: '/health' })).json()
    t.not(health.services.nbp.detail.last_error, null, '/health shows the NBP error')
    t.equal((await app.inject({ url: `/usage/exchange-rates?from=${DAY}&to=${DAY}` })).json().rates.length, 0, 'nothing stored')

    if (fault === 'refused') return
    nbp.setMode('ok')
    const rerun = (await runBatch(app, { date: DAY })).json().runs[0]
    t.equal(rerun.status, 'succeeded')
    t.equal(rerun.exchange_rate_usd_pln, 4.0341)
    t.equal(rerun.data_corrections, 4, 'every row of the day (2 user×model, 1 model, 1 client) gained its PLN')
    t.not(summaryRows(db, 'client_daily_usage', DAY)[0]!.markup_cost_nano_pln, null)
  })
}

t.test('a manual rate prices the day on rerun and survives later fetches', async (t) => {
  const { app, db, nbp } = await setup(t)
  await postEvents(app, events)
  await runBatch(app, { date: DAY })
  const put = await app.inject({ method: 'PUT', url: `/usage/exchange-rates/${DAY}`, payload: { rate: '4.5', note: 'agreed with the client' } })
  t.equal(put.statusCode, 200, put.body)
  t.match(put.json(), { usage_date: DAY, rate: 4.5, source: 'manual', table_no: null })

  const requestsBefore = nbp.requests.length
  const rerun = (await runBatch(app, { date: DAY })).json().runs[0]
  t.equal(rerun.exchange_rate_usd_pln, 4.5)
  t.equal(nbp.requests.length, requestsBefore, 'a stored rate needs no fetch')
  const row = summaryRows(db, 'client_daily_usage', DAY)[0]!
  t.equal(BigInt(row.markup_cost_nano_pln as number), expectTimesRate(BigInt(row.markup_cost_nano_usd as number), '4.5'))

  // Another rerun, and the rates list, still show the manual rate.
  await runBatch(app, { date: DAY })
  const rates = (await app.inject({ url: `/usage/exchange-rates?from=${DAY}&to=${DAY}` })).json().rates
  t.match(rates, [{ rate: 4.5, source: 'manual' }])

  for (const bad of [{ rate: 0 }, { rate: '-4' }, { rate: '4.1234567' }, { rate: 'abc' }, { rate: 1000 }, { note: 'x' }, { rate: '4', extra: 1 }]) {
    const res = await app.inject({ method: 'PUT', url: `/usage/exchange-rates/${DAY}`, payload: bad })
    t.equal(res.statusCode, 400, `${JSON.stringify(bad)} → ${res.statusCode}`)
  }
  t.equal((await app.inject({ method: 'PUT', url: '/usage/exchange-rates/2026-12-01', payload: { rate: 4 } })).statusCode, 400, 'future date')
  t.match((await app.inject({ url: `/usage/exchange-rates?from=${DAY}&to=${DAY}` })).json().rates, [{ rate: 4.5 }], 'bad input changed nothing')
})
