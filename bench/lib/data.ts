// Deterministic synthetic usage for the benchmark and the chaos suite: the same flags give the same
// events, byte for byte, in every process that generates them (children regenerate, nothing is shipped).
import { usagePointLine } from '../../src/sources/line-protocol.js'
import Database from 'better-sqlite3'
import { nanoToDecimalText } from '../../src/money.js'
import type { UsageEvent } from '../../src/usage-event.js'
import { INSERT_EVENT_SQL } from '../../src/db/sqlite/ingest.js'

export interface Shape {
  events: number
  clients: number
  users: number
  models: number
  seed: number
}

/** mulberry32: small, fast and good enough to spread synthetic usage. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const clientName = (c: number) => `client-${String(c).padStart(4, '0')}`
export const userName = (c: number, u: number) => `${clientName(c)}-user-${String(u).padStart(3, '0')}`
export const modelName = (m: number) => `vendor-${m % 5}/model-${String(m).padStart(3, '0')}`

/** Nano-USD per token per model: between 0.02 and ~10 USD per million tokens. */
function pricePerTokenNano(m: number): bigint {
  return BigInt(20 + ((m * 7919) % 10_000))
}

/**
 * One record drawn from `random`: client, user, model, then input and output tokens, then the time
 * (`occurredMs`), in that order, so that a seed always gives the same data. Costs are exact nano-USD.
 */
function drawRecord(random: () => number, shape: Shape, occurredMs: (random: () => number) => number, requestIdOf: (occurredMs: number) => string): UsageEvent {
  const c = Math.floor(random() * shape.clients)
  const u = Math.floor(random() * shape.users)
  const m = Math.floor(random() * shape.models)
  const input = 50 + Math.floor(random() * 4000)
  const output = 20 + Math.floor(random() * 1500)
  const occurred = occurredMs(random)
  return {
    request_id: requestIdOf(occurred),
    client_org_id: clientName(c),
    model: modelName(m),
    external_user: userName(c, u),
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    cost_nano_usd: BigInt(input + output) * pricePerTokenNano(m),
    occurred_at_ms: occurred,
  }
}

/**
 * The events of one window, in generation order. `prefix` keeps request ids of different data sets
 * apart (the batch day, the ingestion rows). Costs are exact nano-USD.
 */
export function* generateEvents(shape: Shape, window: { startMs: number; endMs: number }, prefix: string): Generator<UsageEvent> {
  const random = prng(shape.seed)
  const span = window.endMs - window.startMs
  for (let i = 0; i < shape.events; i++) {
    yield drawRecord(random, shape, (r) => window.startMs + Math.floor(r() * span), () => `${prefix}-${i}`)
  }
}

/** How the day's records sit in usage_events: as producers post them (time order), or shuffled. */
export type DataOrder = 'time' | 'shuffled'

/**
 * A request id as gateways mint them (OpenRouter's `gen-<epoch seconds>-<random>`): time first, so
 * ids posted in time order land near the end of the primary key, then a random part.
 */
function requestId(prefix: string, seed: number, i: number, occurredMs: number): string {
  const random = prng(seed ^ Math.imul(i + 1, 0x9e3779b1))
  const suffix = Math.floor(random() * 2 ** 32).toString(36) + Math.floor(random() * 2 ** 32).toString(36)
  return `${prefix}-${Math.floor(occurredMs / 1000)}-${suffix}`
}

/**
 * The events of one business day for the batch and ingestion benchmarks: record i happens at a time
 * that grows with i, so `time` yields them as producers post them (each request's records later than
 * the previous request's), and `shuffled` yields the very same records in a seeded random order.
 * Each record is derived from its index alone, so both orders hold identical records.
 */
export function* generateDay(shape: Shape, window: { startMs: number; endMs: number }, prefix: string, order: DataOrder): Generator<UsageEvent> {
  const span = window.endMs - window.startMs
  let permutation: Uint32Array | undefined
  if (order === 'shuffled') {
    permutation = new Uint32Array(shape.events)
    for (let i = 0; i < shape.events; i++) permutation[i] = i
    const random = prng(shape.seed + 7)
    for (let i = shape.events - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const t = permutation[i]!
      permutation[i] = permutation[j]!
      permutation[j] = t
    }
  }
  for (let k = 0; k < shape.events; k++) {
    const i = permutation ? permutation[k]! : k
    const random = prng(shape.seed ^ Math.imul(i + 1, 0x85ebca6b))
    yield drawRecord(random, shape, (r) => window.startMs + Math.floor(((i + r()) * span) / shape.events), (occurred) => requestId(prefix, shape.seed, i, occurred))
  }
}

/** One record through the embedded store's own INSERT (src/sources/sqlite-sql.ts), bound as the store binds it; 1 if stored. */
export function insertEvent(insert: Database.Statement, e: UsageEvent, receivedAt: number): number {
  return insert.run(e.request_id, e.client_org_id, e.model, e.external_user, e.input_tokens, e.output_tokens, e.total_tokens, e.cost_nano_usd, e.occurred_at_ms, receivedAt).changes
}

/** Inserts events straight into a migrated database, in big transactions (setup speed only). */
export function insertEventsDirect(conn: Database.Database, events: Iterable<UsageEvent>, perTransaction: number, receivedAt: number): number {
  const insert = conn.prepare(INSERT_EVENT_SQL)
  const flush = conn.transaction((batch: UsageEvent[]) => {
    let n = 0
    for (const e of batch) n += insertEvent(insert, e, receivedAt)
    return n
  })
  let inserted = 0
  let batch: UsageEvent[] = []
  for (const e of events) {
    batch.push(e)
    if (batch.length === perTransaction) {
      inserted += flush(batch)
      batch = []
    }
  }
  if (batch.length > 0) inserted += flush(batch)
  return inserted
}

/** The request body form of an event (docs/data-model.md#the-raw-record), as a producer would send it. */
export function toRequestRecord(e: UsageEvent) {
  return {
    request_id: e.request_id,
    client_org_id: e.client_org_id,
    model: e.model,
    external_user: e.external_user,
    input_tokens: e.input_tokens,
    output_tokens: e.output_tokens,
    total_tokens: e.total_tokens,
    cost_usd: nanoToDecimalText(e.cost_nano_usd),
    timestamp: new Date(e.occurred_at_ms).toISOString(),
  }
}

/** One point in the earlier system's layout, written exactly as the product's ingest writes it. */
export function toLineProtocol(e: UsageEvent, measurement = 'usage_tracking'): string {
  return usagePointLine(measurement, e)
}
