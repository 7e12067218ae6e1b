import t from 'tap'
import { buildClientDay, groupByClient, groupsOf, primaryModel, type Sums } from '../../src/batch/rows.js'
import type { AggregateRow } from '../../src/sources/types.js'

const sums = (total_tokens: number, raw = 0n): Sums => ({
  input_tokens: total_tokens,
  output_tokens: 0,
  total_tokens,
  total_requests: 1,
  raw_cost_nano_usd: raw,
})

t.test('primary model: most tokens, ties broken by name', async (t) => {
  t.equal(primaryModel(new Map([['b', sums(10)], ['a', sums(5)]])), 'b')
  t.equal(primaryModel(new Map([['zeta', sums(10)], ['alpha', sums(10)], ['mid', sums(10)]])), 'alpha')
  t.equal(primaryModel(new Map([['alpha', sums(10)], ['zeta', sums(10)]])), 'alpha', 'independent of insertion order')
})

t.test('rows sharing a key are merged, not duplicated', async (t) => {
  const row = (user: string, cost: bigint): AggregateRow => ({
    client_org_id: 'c',
    external_user: user,
    model: 'm',
    input_tokens: 1,
    output_tokens: 2,
    total_tokens: 3,
    total_requests: 1,
    raw_cost_nano_usd: cost,
  })
  const grouped = groupByClient([row('unknown', 5n), row('unknown', 7n), row('alice', 1n)])
  const groups = [...groupsOf(grouped.get('c')!)]
  t.equal(groups.length, 2)
  const unknown = groups.find((g) => g.external_user === 'unknown')!
  t.equal(unknown.sums.raw_cost_nano_usd, 12n)
  t.equal(unknown.sums.total_requests, 2)
})

t.test('each row is priced from its own raw sum; client and model rows sum the users', async (t) => {
  // 3 users each with 1 nano-USD: per row 1 × 1.5 = 1.5 → 2 (half-even), but the client's own
  // raw sum 3 × 1.5 = 4.5 → 4. Rows are priced independently, as the SPEC asks.
  const groups = ['a', 'b', 'c'].map((u) => ({ external_user: u, model: 'm', sums: sums(1, 1n) }))
  const day = buildClientDay('c', groups, { markupRate: '1.5', usdPln: { rate: '4.0341', effective_date: '2026-11-26' }, dataSource: 'sqlite' })
  t.same(day.users.map((u) => u.markup_cost_nano_usd), [2n, 2n, 2n])
  t.equal(day.client.raw_cost_nano_usd, 3n)
  t.equal(day.client.markup_cost_nano_usd, 4n)
  t.equal(day.models[0]!.markup_cost_nano_usd, 4n)
  // PLN from the row's markup: 4 × 4.0341 = 16.1364 → 16
  t.equal(day.client.markup_cost_nano_pln, 16n)
  t.equal(day.client.unique_users, 3)
  t.equal(day.client.exchange_rate_usd_pln, '4.0341')
  t.equal(day.client.exchange_rate_date, '2026-11-26')
})

t.test('no rate → PLN null, never a guess', async (t) => {
  const day = buildClientDay('c', [{ external_user: 'u', model: 'm', sums: sums(1, 1_000_000_000n) }], {
    markupRate: '1.3',
    usdPln: null,
    dataSource: 'sqlite',
  })
  t.equal(day.client.markup_cost_nano_usd, 1_300_000_000n)
  t.equal(day.client.markup_cost_nano_pln, null)
  t.equal(day.client.exchange_rate_usd_pln, null)
})
