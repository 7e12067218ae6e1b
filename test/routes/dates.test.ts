// One date parser for every date in paths, queries, bodies and the CLI: out-of-range dates are a
// 400 that says YYYY-MM-DD and the accepted range, never a 500, and never a run in the ledger.
import t from 'tap'
import { join } from 'node:path'
import { DATE_RULE, MONTH_RULE, addDays, dayWindow, isValidDate, isValidMonth, monthBounds } from '../../src/clock.js'
import { buildTestApp, databaseDigest, DEFAULT_NOW_MS } from '../helpers/app.js'
import { runCli } from '../helpers/cli.js'

const OUT_OF_RANGE = ['0000-01-01', '0001-01-01', '0099-12-31', '1999-12-31', '10000-01-01', '+10000-01-01', '-0001-01-01']

t.test('the accepted range is what the calendar code can serve, both ends included', async (t) => {
  t.equal(DATE_RULE, 'a date YYYY-MM-DD from 2000-01-01 to 9999-12-31')
  for (const d of OUT_OF_RANGE) t.notOk(isValidDate(d), d)
  for (const d of ['2000-01-01', '9999-12-31', '2000-02-29', '2400-02-29']) t.ok(isValidDate(d), d)
  t.notOk(isValidDate('2100-02-29'), 'no 29 February in 2100')
  for (const m of ['1999-12', '0000-01', '10000-01', '2026-13', '2026-00']) t.notOk(isValidMonth(m), m)
  t.same(monthBounds('9999-12'), { from: '9999-12-01', to: '9999-12-31' })
  t.equal(addDays('9999-12-31', 1), '10000-01-01', 'the day after the range, for window ends')
  const last = dayWindow('9999-12-31', 'Europe/Warsaw')
  t.equal(last.endMs - last.startMs, 86_400_000, 'the last day has a window')
})

t.test('every route refuses out-of-range dates with 400 naming the form and the range, and stores nothing', async (t) => {
  const { app, db } = await buildTestApp(t)
  const digest = databaseDigest(db)
  const requests: Array<{ method: 'GET' | 'POST' | 'PUT'; url: string; payload?: object; rule?: string }> = []
  for (const d of OUT_OF_RANGE) {
    const q = encodeURIComponent(d)
    requests.push(
      { method: 'GET', url: `/usage/clients?from=${q}` },
      { method: 'GET', url: `/usage/clients?to=${q}` },
      { method: 'GET', url: `/usage/clients/acme/daily?from=${q}&to=2026-11-01` },
      { method: 'GET', url: `/usage/clients/acme/users?from=${q}` },
      { method: 'GET', url: `/usage/clients/acme/models?to=${q}` },
      { method: 'GET', url: `/usage/exchange-rates?from=${q}` },
      { method: 'PUT', url: `/usage/exchange-rates/${q}`, payload: { rate: '4.0341' } },
      { method: 'POST', url: '/batch/run?wait=true', payload: { date: d } },
      { method: 'POST', url: '/batch/run?wait=true', payload: { from: d, to: '2026-11-01' } },
      { method: 'GET', url: `/batch/runs?from=${q}` },
      { method: 'GET', url: `/batch/runs?to=${q}` },
      { method: 'PUT', url: '/clients/acme/pricing', payload: { markup_rate: '1.2', effective_from: d } },
      { method: 'GET', url: `/usage/events/voided?from=${q}` },
    )
  }
  for (const month of ['0000-01', '0099-12', '1999-12', '10000-01', '2026-13']) {
    requests.push({ method: 'GET', url: `/usage/clients/acme/summary?month=${month}`, rule: MONTH_RULE })
  }
  for (const r of requests) {
    const res = await app.inject({ method: r.method, url: r.url, ...(r.payload ? { payload: r.payload } : {}) })
    const label = `${r.method} ${r.url} ${r.payload ? JSON.stringify(r.payload) : ''}`
    t.equal(res.statusCode, 400, `${label} → ${res.statusCode} ${res.body.slice(0, 200)}`)
    t.ok(res.json().message.includes(r.rule ?? DATE_RULE), `${label}: ${res.json().message}`)
  }
  t.equal(databaseDigest(db), digest, 'nothing stored, no run opened')
  t.equal((db.$client.prepare('SELECT count(*) FROM influxdb_batch_runs').pluck().get() as number), 0, 'no failed run in the ledger')
})

t.test('the edges of the range are served, never a 500', async (t) => {
  const { app } = await buildTestApp(t)
  const ok = [
    '/usage/clients?from=2000-01-01&to=2000-12-31',
    '/usage/clients/acme/daily?from=9999-12-01&to=9999-12-31',
    '/usage/clients/acme/users?from=9999-06-01&to=9999-06-30',
    '/usage/clients/acme/models?from=2000-01-01',
    '/usage/clients/acme/summary?month=9999-12',
    '/usage/clients/acme/summary?month=2000-01',
    '/usage/exchange-rates?from=9999-01-01&to=9999-12-31',
    '/batch/runs?from=2000-01-01&to=9999-12-31',
  ]
  for (const url of ok) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, `${url} → ${res.statusCode} ${res.body.slice(0, 200)}`)
  }
  // In range but in the future, or an inverted default range: refused as such, with a 400.
  const refused: Array<{ method: 'GET' | 'POST' | 'PUT'; url: string; payload?: object }> = [
    { method: 'GET', url: '/usage/clients/acme/daily?from=9999-12-31' },
    { method: 'PUT', url: '/usage/exchange-rates/9999-12-31', payload: { rate: '4.0341' } },
    { method: 'POST', url: '/batch/run?wait=true', payload: { date: '9999-12-31' } },
    { method: 'POST', url: '/batch/run?wait=true', payload: { from: '9999-12-01', to: '9999-12-31' } },
  ]
  for (const r of refused) {
    const res = await app.inject({ method: r.method, url: r.url, ...(r.payload ? { payload: r.payload } : {}) })
    t.equal(res.statusCode, 400, `${r.url} → ${res.statusCode} ${res.body.slice(0, 200)}`)
  }
  const pricing = await app.inject({ method: 'PUT', url: '/clients/acme/pricing', payload: { markup_rate: '1.2', effective_from: '9999-12-31' } })
  t.equal(pricing.statusCode, 201, 'a far-future price entry is a date like any other')
})

t.test('the CLI refuses the same dates with exit code 2 and the same rule', async (t) => {
  const env = { SQLITE_PATH: join(t.testdir({}), 'usage.db') }
  for (const args of [
    ['run', '--date', '0001-01-01'],
    ['run', '--from', '0000-01-01', '--to', '2026-11-01'],
    ['run', '--from', '2026-11-01', '--to', '10000-01-01'],
    ['archive', 'restore', '--date', '0099-12-31'],
  ]) {
    const res = await runCli(args, env, DEFAULT_NOW_MS)
    t.equal(res.code, 2, `${args.join(' ')} → ${res.code}`)
    t.match(res.err, DATE_RULE, res.err.split('\n')[0] ?? '')
  }
})
