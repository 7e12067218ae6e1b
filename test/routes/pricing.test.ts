// Per-client markup: the history API, exact decimals, and how the batch prices days with it.
import t from 'tap'
import { buildTestApp, expectNano, expectTimesRate, nanoText, postEvents, runBatch, summaryRows } from '../helpers/app.js'
import type { App } from '../../src/app.js'

const put = (app: App, client: string, payload: object) => app.inject({ method: 'PUT', url: `/clients/${client}/pricing`, payload })

t.test('history: appended, exact decimals, bounds, one entry per effective date', async (t) => {
  const { app, db } = await buildTestApp(t)
  t.same((await app.inject({ url: '/clients/acme/pricing' })).json(), {
    client_org_id: 'acme',
    default_markup_rate: 1.3,
    current_markup_rate: 1.3,
    history: [],
  })

  const created = await put(app, 'acme', { markup_rate: '1.50', effective_from: '2026-12-01', note: 'new contract' })
  t.equal(created.statusCode, 201, created.body)
  t.same(created.json(), {
    client_org_id: 'acme',
    entry: { effective_from: '2026-12-01', markup_rate: 1.5, note: 'new contract', created_at: '2026-11-28T12:00:00.000Z' },
  })
  t.equal((await put(app, 'acme', { markup_rate: 1.1, effective_from: '2026-11-01' })).statusCode, 201)
  t.equal((await put(app, 'acme', { markup_rate: '10', effective_from: '2027-01-01' })).statusCode, 201, 'upper bound inclusive')
  t.equal((await put(app, 'acme', { markup_rate: 1, effective_from: '2027-02-01' })).statusCode, 201, 'lower bound inclusive')
  const stored = db.$client.prepare("SELECT effective_from, markup_rate FROM client_pricing WHERE client_org_id = 'acme' ORDER BY effective_from").all()
  t.same(
    stored,
    [
      { effective_from: '2026-11-01', markup_rate: '1.1' },
      { effective_from: '2026-12-01', markup_rate: '1.5' },
      { effective_from: '2027-01-01', markup_rate: '10' },
      { effective_from: '2027-02-01', markup_rate: '1' },
    ],
    'canonical exact decimal text, no float noise',
  )

  const dup = await put(app, 'acme', { markup_rate: '2', effective_from: '2026-12-01' })
  t.equal(dup.statusCode, 409)
  t.match(dup.json(), { statusCode: 409, error: 'Conflict', message: /already has a pricing entry/ })
  t.equal((await put(app, 'globex', { markup_rate: '2', effective_from: '2026-12-01' })).statusCode, 201, 'per client')

  for (const bad of [
    { markup_rate: '0.99', effective_from: '2026-12-02' },
    { markup_rate: 10.000000001, effective_from: '2026-12-02' },
    { markup_rate: '1e1', effective_from: '2026-12-02' },
    { markup_rate: 'abc', effective_from: '2026-12-02' },
    { markup_rate: -1.5, effective_from: '2026-12-02' },
    { markup_rate: '1.2', effective_from: '2026-02-30' },
    { markup_rate: '1.2' },
    { markup_rate: '1.2', effective_from: '2026-12-02', extra: 1 },
    { markup_rate: true, effective_from: '2026-12-02' },
  ]) {
    const res = await put(app, 'acme', bad)
    t.equal(res.statusCode, 400, JSON.stringify(bad))
    t.match(res.json(), { statusCode: 400, error: 'Bad Request', message: String })
  }

  const history = (await app.inject({ url: '/clients/acme/pricing' })).json()
  t.same(
    history.history.map((h: { effective_from: string; markup_rate: number }) => [h.effective_from, h.markup_rate]),
    [
      ['2026-11-01', 1.1],
      ['2026-12-01', 1.5],
      ['2027-01-01', 10],
      ['2027-02-01', 1],
    ],
    'ascending by effective date',
  )
  t.equal(history.current_markup_rate, 1.1, 'the entry in force today (2026-11-28)')
  t.equal(history.default_markup_rate, 1.3)
})

const COST = '0.123456789'

async function seedDays(app: App, dates: string[]) {
  const res = await postEvents(
    app,
    dates.flatMap((date) =>
      ['alice', 'bob'].map((user) => ({
        request_id: `${date}-${user}`,
        client_org_id: 'acme',
        model: user === 'alice' ? 'm/a' : 'm/b',
        external_user: user,
        input_tokens: 10,
        output_tokens: 1,
        cost_usd: COST,
        timestamp: `${date}T10:00:00Z`,
      })),
    ),
  )
  if (res.statusCode !== 200) throw new Error(res.body)
}

async function daily(app: App) {
  const body = (await app.inject({ url: '/usage/clients/acme/daily?from=2026-11-01&to=2026-11-27' })).json()
  return new Map<string, { markup_rate: number; markup_cost_usd: number }>(
    body.days.map((d: { usage_date: string; markup_rate: number; markup_cost_usd: number }) => [d.usage_date, d]),
  )
}

const dayMarkup = (rate: string) => Number(nanoText(expectTimesRate(2n * expectNano(COST), rate)))

t.test('a markup change prices days from its effective date on; every summary row shows its rate', async (t) => {
  const { app, db } = await buildTestApp(t)
  await seedDays(app, ['2026-11-10', '2026-11-11'])
  t.equal((await put(app, 'acme', { markup_rate: '2.05', effective_from: '2026-11-11' })).statusCode, 201)
  await runBatch(app, { from: '2026-11-10', to: '2026-11-11' })
  const days = await daily(app)
  t.match(days.get('2026-11-10'), { markup_rate: 1.3, markup_cost_usd: dayMarkup('1.3') })
  t.match(days.get('2026-11-11'), { markup_rate: 2.05, markup_cost_usd: dayMarkup('2.05') })
  for (const table of ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']) {
    t.same(new Set(summaryRows(db, table, '2026-11-10').map((r) => r.markup_rate)), new Set(['1.3']), `${table} 11-10`)
    t.same(new Set(summaryRows(db, table, '2026-11-11').map((r) => r.markup_rate)), new Set(['2.05']), `${table} 11-11`)
  }
  for (const r of summaryRows(db, 'client_user_daily_usage', '2026-11-11')) {
    t.equal(BigInt(r.markup_cost_nano_usd as number), expectTimesRate(expectNano(COST), '2.05'))
  }
})

t.test('a rerun of an old day after a later price change keeps the old price', async (t) => {
  const { app } = await buildTestApp(t)
  await seedDays(app, ['2026-11-10'])
  await runBatch(app, { date: '2026-11-10' })
  t.equal((await put(app, 'acme', { markup_rate: '1.7', effective_from: '2026-11-15' })).statusCode, 201)
  const rerun = (await runBatch(app, { date: '2026-11-10' })).json().runs[0]
  t.equal(rerun.data_corrections, 0, 'nothing changed')
  t.match((await daily(app)).get('2026-11-10'), { markup_rate: 1.3, markup_cost_usd: dayMarkup('1.3') })
})

t.test('a retroactive entry applies on rerun, and only up to the next entry', async (t) => {
  const { app } = await buildTestApp(t)
  await seedDays(app, ['2026-11-10', '2026-11-20'])
  t.equal((await put(app, 'acme', { markup_rate: '2', effective_from: '2026-11-15' })).statusCode, 201)
  await runBatch(app, { from: '2026-11-10', to: '2026-11-20' })
  t.match((await daily(app)).get('2026-11-10'), { markup_rate: 1.3 })

  t.equal((await put(app, 'acme', { markup_rate: '1.45', effective_from: '2026-11-01', note: 'agreed late' })).statusCode, 201)
  t.match((await daily(app)).get('2026-11-10'), { markup_rate: 1.3 }, 'stored days are not re-priced behind anyone\'s back')
  const runs = (await runBatch(app, { from: '2026-11-10', to: '2026-11-20' })).json().runs
  const days = await daily(app)
  t.match(days.get('2026-11-10'), { markup_rate: 1.45, markup_cost_usd: dayMarkup('1.45') })
  t.match(days.get('2026-11-20'), { markup_rate: 2, markup_cost_usd: dayMarkup('2') }, 'the later entry still wins after its date')
  t.equal(runs[0].data_corrections, 5, '11-10: two user rows, two model rows and the client row re-priced')
  t.equal(runs.at(-1).data_corrections, 0)
})
