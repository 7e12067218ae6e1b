import t from 'tap'
import { aggregateByClient, type ClientOutcome } from '../../src/sources/per-client.js'
import type { AggregateRow, UsageSource } from '../../src/sources/types.js'

function row(client: string, user: string): AggregateRow {
  return { client_org_id: client, external_user: user, model: 'm', input_tokens: 1, output_tokens: 1, total_tokens: 2, total_requests: 1, raw_cost_nano_usd: 1n }
}

function stubSource(inFlight: { now: number; max: number }): UsageSource {
  return {
    dataSource: 'influxdb_first',
    dialect: 'stub',
    async *aggregate(_window, options = {}) {
      inFlight.now++
      inFlight.max = Math.max(inFlight.max, inFlight.now)
      try {
        const client = options.clientOrgId!
        await new Promise((r) => setTimeout(r, 5 + (client.length % 3) * 5))
        yield row(client, 'alice')
        // A client failing after its first row must not pass on that row.
        if (client === 'broken') throw new Error('query failed for broken')
        yield row(client, 'bob')
      } finally {
        inFlight.now--
      }
    },
    ingest: async () => ({ accepted: 0, duplicates: 0 }),
    check: async () => ({ status: 'up', detail: {} }),
    close: async () => {},
  }
}

t.test('bounded concurrency; a failing client fails alone and whole', async (t) => {
  const inFlight = { now: 0, max: 0 }
  const clients = ['a', 'bb', 'broken', 'ccc', 'd', 'ee', 'fff', 'g']
  const outcomes: ClientOutcome[] = []
  for await (const o of aggregateByClient(stubSource(inFlight), { startMs: 0, endMs: 1 }, clients, 3)) outcomes.push(o)
  t.equal(inFlight.max, 3, 'never more than 3 queries at once')
  t.equal(outcomes.length, clients.length)
  const byClient = new Map(outcomes.map((o) => [o.clientOrgId, o]))
  const broken = byClient.get('broken')!
  t.ok('error' in broken && /broken/.test(broken.error.message), 'the failing client carries its error, no rows')
  for (const c of clients.filter((c) => c !== 'broken')) {
    const o = byClient.get(c)!
    t.strictSame('rows' in o ? o.rows.map((r) => r.external_user) : o, ['alice', 'bob'], c)
  }
  await t.rejects(async () => {
    for await (const _ of aggregateByClient(stubSource(inFlight), { startMs: 0, endMs: 1 }, clients, 0)) void _
  }, RangeError)
})
