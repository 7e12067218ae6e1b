// One behavioural contract for every UsageSource. Each store gets the same dataset through its
// own means (ingest, plus the earlier system's point layout where the store has one) and must give
// the same AggregateRows, to the nano-unit, as totals computed here independently.
import type { Test } from 'tap'
import { dayWindow, localDateOf, localTimeToInstant } from '../../src/clock.js'
import { toNano } from '../../src/money.js'
import type { AggregateRow, UsageSource } from '../../src/sources/types.js'
import type { UsageEvent } from '../../src/usage-event.js'

export const TZ = 'Europe/Warsaw'

/** A point as the earlier Python system wrote it: maybe no external_user, extra tags, float cost. */
export interface LegacyPoint {
  request_id: string
  api_key_hash: string
  client_org_id: string
  external_user?: string
  model: string
  input_tokens: number
  output_tokens: number
  total_tokens: number
  /** Written verbatim as the float field's text (noise included). */
  cost_text: string
  occurred_at_ms: number
}

export interface SourceFixture {
  source: UsageSource
  /** Writes points in the earlier system's layout; stores without one ingest them as events. */
  writeLegacy(points: LegacyPoint[]): Promise<void>
  /** Makes the store unreachable, for "a failing query throws, never returns nothing". */
  breakStore?(): Promise<void>
}

/** dedicatedStore: the test will break the store, so it must not be one that other tests share. */
export type FixtureFactory = (t: Test, options?: { dedicatedStore?: boolean }) => Promise<SourceFixture>

/** How a store without a legacy layout takes legacy points: as the ingest API would. */
export function legacyAsEvents(points: LegacyPoint[]): UsageEvent[] {
  return points.map((p) => ({
    request_id: p.request_id,
    client_org_id: p.client_org_id,
    external_user: p.external_user || 'unknown',
    model: p.model,
    input_tokens: p.input_tokens,
    output_tokens: p.output_tokens,
    total_tokens: p.total_tokens,
    cost_nano_usd: toNano(p.cost_text),
    occurred_at_ms: p.occurred_at_ms,
  }))
}

export const HOSTILE_CLIENT = `q'uo"te\\back.*+?^$()[]{}|/ ,=x`
/** Cannot be stored in InfluxDB tags at all; used to prove it cannot alter a query either. */
export const INJECTION_CLIENT = `acme' OR 1=1 --\n" OR "a"="a\\`

const CLIENTS = ['acme', 'beta', HOSTILE_CLIENT]
const USERS = ['alice', 'bob', 'mai_client_63a4eb6d_user_a1b2c3d4']
const MODELS = ['anthropic/claude-sonnet-4', 'openai/gpt-4o', 'meta-llama/llama-3.1-8b-instruct']
// Tiny, ordinary and noisy costs; every one has at most 9 decimals once rounded.
const COSTS = ['0.000000150', '0.3', '0.000123456', '1.000000001', '0.1', '0.2', '0.000000001', '12.5', '0.30000000000000004']

const DAY = '2026-03-29'
export const DAY_FOR_TESTS = DAY

interface Dataset {
  events: UsageEvent[]
  legacy: LegacyPoint[]
}

/** Deterministic: the same on every run and for every store. */
export function buildDataset(): Dataset {
  const events: UsageEvent[] = []
  const legacy: LegacyPoint[] = []
  let n = 0
  const at = (date: string, hour: number, minute: number) => localTimeToInstant(date, hour, minute, TZ)
  for (const client of CLIENTS) {
    for (const [ui, user] of USERS.entries()) {
      for (const [mi, model] of MODELS.entries()) {
        if ((ui + mi) % 3 === 2 && client === 'beta') continue
        for (let k = 0; k < 3; k++) {
          n++
          const input = 100 * n + k
          const output = 7 * n
          events.push({
            request_id: `req-${n}`,
            client_org_id: client,
            external_user: user,
            model,
            input_tokens: input,
            output_tokens: output,
            total_tokens: input + output,
            cost_nano_usd: toNano(COSTS[n % COSTS.length]!),
            occurred_at_ms: at(DAY, (n * 5) % 24, (n * 7) % 60) + (n % 1000),
          })
        }
      }
    }
    // Records without a user: stored as 'unknown' by ingest, tagless in the earlier system's points.
    events.push({
      request_id: `req-unknown-${client}`,
      client_org_id: client,
      external_user: 'unknown',
      model: MODELS[0]!,
      input_tokens: 11,
      output_tokens: 12,
      total_tokens: 23,
      cost_nano_usd: toNano('0.000000150'),
      occurred_at_ms: at(DAY, 9, 0),
    })
    for (let k = 0; k < 4; k++) {
      legacy.push({
        request_id: `legacy-${client}-${k}`,
        api_key_hash: `hash${k}`,
        client_org_id: client,
        external_user: k % 2 === 0 ? undefined : USERS[k % USERS.length],
        model: MODELS[k % 2]!,
        input_tokens: 1000 + k,
        output_tokens: 500 + k,
        total_tokens: 1500 + 2 * k,
        cost_text: ['0.1', '0.2', '0.30000000000000004', '0.000000150'][k]!,
        // Whole milliseconds, as the earlier system wrote them.
        occurred_at_ms: at(DAY, 10 + k, 15),
      })
    }
  }
  // A lone tiny cost, and a group whose float sum in InfluxDB carries binary noise.
  events.push({
    request_id: 'tiny-1',
    client_org_id: 'beta',
    external_user: 'tiny',
    model: MODELS[2]!,
    input_tokens: 1,
    output_tokens: 1,
    total_tokens: 2,
    cost_nano_usd: toNano('0.000000150'),
    occurred_at_ms: at(DAY, 8, 0),
  })
  for (let k = 0; k < 30; k++) {
    events.push({
      request_id: `noisy-${k}`,
      client_org_id: 'beta',
      external_user: 'noisy',
      model: MODELS[0]!,
      input_tokens: k,
      output_tokens: 0,
      total_tokens: k,
      cost_nano_usd: toNano(['0.1', '0.2', '0.000000150'][k % 3]!),
      occurred_at_ms: at(DAY, 7, k),
    })
  }
  // DST edges: 23:30 and 00:30 local around both 2026 changes land on their local dates.
  const edges: Array<[string, number, number]> = [
    ['2026-03-28', 23, 30],
    ['2026-03-29', 0, 30],
    ['2026-03-29', 23, 30],
    ['2026-03-30', 0, 30],
    ['2026-10-24', 23, 30],
    ['2026-10-25', 0, 30],
    ['2026-10-25', 2, 30],
    ['2026-10-25', 23, 30],
    ['2026-10-26', 0, 30],
  ]
  for (const [i, [date, hour, minute]] of edges.entries()) {
    events.push({
      request_id: `edge-${i}`,
      client_org_id: 'acme',
      external_user: 'alice',
      model: MODELS[1]!,
      input_tokens: 10 ** i,
      output_tokens: 1,
      total_tokens: 10 ** i + 1,
      cost_nano_usd: BigInt(i + 1),
      occurred_at_ms: at(date, hour, minute),
    })
  }
  return { events, legacy }
}

/** Expected rows, summed here with exact integers from the dataset itself. */
export function expectedRows(data: Dataset, date: string, clientOrgId?: string): AggregateRow[] {
  const all = [...data.events, ...legacyAsEvents(data.legacy)]
  const groups = new Map<string, AggregateRow>()
  for (const e of all) {
    if (localDateOf(e.occurred_at_ms, TZ) !== date) continue
    if (clientOrgId !== undefined && e.client_org_id !== clientOrgId) continue
    const key = JSON.stringify([e.client_org_id, e.external_user, e.model])
    const g = groups.get(key) ?? {
      client_org_id: e.client_org_id,
      external_user: e.external_user,
      model: e.model,
      input_tokens: 0,
      output_tokens: 0,
      total_tokens: 0,
      total_requests: 0,
      raw_cost_nano_usd: 0n,
    }
    g.input_tokens += e.input_tokens
    g.output_tokens += e.output_tokens
    g.total_tokens += e.total_tokens
    g.raw_cost_nano_usd = BigInt(g.raw_cost_nano_usd) + e.cost_nano_usd
    g.total_requests += 1
    groups.set(key, g)
  }
  return sortRows([...groups.values()])
}

export function sortRows(rows: AggregateRow[]): AggregateRow[] {
  const key = (r: AggregateRow) => JSON.stringify([r.client_org_id, r.external_user, r.model])
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
}

export async function collect(source: UsageSource, date: string, clientOrgId?: string): Promise<AggregateRow[]> {
  const rows: AggregateRow[] = []
  const options = clientOrgId === undefined ? {} : { clientOrgId }
  for await (const r of source.aggregate(dayWindow(date, TZ), options)) rows.push(r)
  return sortRows(rows)
}

/**
 * The day through `aggregateClients`, where the source offers it: each client must come once,
 * with only its own rows. Undefined when the source does not offer it.
 */
export async function collectByClient(t: Test, source: UsageSource, date: string): Promise<AggregateRow[] | undefined> {
  if (!source.aggregateClients) return undefined
  const rows: AggregateRow[] = []
  const seen = new Set<string>()
  for await (const client of source.aggregateClients(dayWindow(date, TZ))) {
    t.notOk(seen.has(client.client_org_id), `${JSON.stringify(client.client_org_id)} delivered once`)
    seen.add(client.client_org_id)
    if ('error' in client) {
      t.fail(`${client.client_org_id} could not be read: ${client.error}`)
      continue
    }
    t.ok(client.rows.length > 0, 'a delivered client has rows')
    t.ok(client.rows.every((r) => r.client_org_id === client.client_org_id), 'a client carries only its own rows')
    rows.push(...client.rows)
  }
  return sortRows(rows)
}

/** Nano amounts made comparable by value for tap's deep equality, and checked to be exact integers. */
function comparable(rows: AggregateRow[]): unknown[] {
  const exact = (n: bigint | number) => (typeof n === 'bigint' || Number.isSafeInteger(n) ? `${n} nano` : `not an exact integer: ${n}`)
  return rows.map((r) => ({ ...r, raw_cost_nano_usd: exact(r.raw_cost_nano_usd) }))
}

export function runSourceContract(t: Test, makeFixture: FixtureFactory): void {
  t.test('a day of mixed records aggregates to the nano-unit', async (t) => {
    const { source, writeLegacy } = await makeFixture(t)
    const data = buildDataset()
    const result = await source.ingest(data.events)
    t.equal(result.accepted, data.events.length, 'every distinct event accepted')
    t.equal(result.duplicates, 0)
    await writeLegacy(data.legacy)

    const expected = expectedRows(data, DAY)
    t.ok(expected.some((r) => r.external_user === 'unknown' && r.total_requests > 1), 'dataset merges tagless and unknown users')
    t.ok(expected.some((r) => r.raw_cost_nano_usd === 150n), 'dataset has a 0.000000150 group')
    t.strictSame(comparable(await collect(source, DAY)), comparable(expected))
    const byClient = await collectByClient(t, source, DAY)
    if (byClient) t.strictSame(comparable(byClient), comparable(expected), 'client by client: the same rows')
  })

  t.test('DST days in Europe/Warsaw: 23:30 and 00:30 land on their local dates', async (t) => {
    const { source, writeLegacy } = await makeFixture(t)
    const data = buildDataset()
    await source.ingest(data.events)
    await writeLegacy(data.legacy)
    for (const date of ['2026-03-28', '2026-03-30', '2026-10-24', '2026-10-25', '2026-10-26']) {
      const expected = expectedRows(data, date)
      t.ok(expected.length > 0, `${date} has edge records`)
      t.strictSame(comparable(await collect(source, date)), comparable(expected), date)
      const byClient = await collectByClient(t, source, date)
      if (byClient) t.strictSame(comparable(byClient), comparable(expected), `${date}, client by client`)
    }
    const oct25 = (await collect(source, '2026-10-25'))[0]
    // 00:30, 02:30 and 23:30 local on the 25-hour day: edge records 5, 6 and 7.
    t.equal(oct25?.input_tokens, 10 ** 5 + 10 ** 6 + 10 ** 7, 'the 25-hour day holds exactly its own edges')
  })

  t.test('one client, including a hostile id, filters correctly', async (t) => {
    const { source, writeLegacy } = await makeFixture(t)
    const data = buildDataset()
    await source.ingest(data.events)
    await writeLegacy(data.legacy)
    for (const client of ['acme', HOSTILE_CLIENT]) {
      const expected = expectedRows(data, DAY, client)
      t.ok(expected.length > 0)
      t.strictSame(comparable(await collect(source, DAY, client)), comparable(expected), JSON.stringify(client))
    }
    t.strictSame(await collect(source, DAY, INJECTION_CLIENT), [], 'an injection attempt matches nothing and breaks nothing')
    t.strictSame(await collect(source, DAY, '.*'), [], 'a regex is not a pattern')
  })

  t.test('a retried event counts once; two events in the same millisecond count twice', async (t) => {
    const { source } = await makeFixture(t)
    const base: UsageEvent = {
      request_id: 'retry-1',
      client_org_id: 'acme',
      external_user: 'alice',
      model: 'openai/gpt-4o',
      input_tokens: 5,
      output_tokens: 6,
      total_tokens: 11,
      cost_nano_usd: 150n,
      occurred_at_ms: localTimeToInstant(DAY, 12, 0, TZ),
    }
    const first = await source.ingest([base, base])
    t.strictSame(first, { accepted: 1, duplicates: 1 }, 'a repeat inside one batch is a duplicate')
    const retry = await source.ingest([base])
    t.equal(retry.accepted + retry.duplicates, 1)
    await source.ingest([{ ...base, request_id: 'same-ms-2' }, { ...base, request_id: 'same-ms-3' }])
    const rows = await collect(source, DAY)
    t.equal(rows.length, 1)
    t.equal(rows[0]?.total_requests, 3, 'retry-1 once, same-ms-2 and same-ms-3 each')
    t.equal(BigInt(rows[0]!.raw_cost_nano_usd), 450n)
    t.equal(rows[0]?.total_tokens, 33)
  })

  t.test('an empty day is empty; a broken store throws', async (t) => {
    const fixture = await makeFixture(t, { dedicatedStore: true })
    t.strictSame(await collect(fixture.source, '2026-01-01'), [])
    const emptyByClient = await collectByClient(t, fixture.source, '2026-01-01')
    if (emptyByClient) t.strictSame(emptyByClient, [], 'client by client: no client')
    const health = await fixture.source.check()
    t.equal(health.status, 'up')
    if (!fixture.breakStore) return
    await fixture.breakStore()
    await t.rejects(collect(fixture.source, DAY), 'never "no usage"')
    if (fixture.source.aggregateClients) await t.rejects(collectByClient(t, fixture.source, DAY), 'client by client: never "no usage"')
  })
}
