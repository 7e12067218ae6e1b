// Deterministic synthetic usage for the benchmark and the chaos suite: the same flags give the same
// events, byte for byte, in every process that generates them (children regenerate, nothing is shipped).
import { usagePointLine } from '../../src/sources/line-protocol.js'
import Database from 'better-sqlite3'
import { nanoToDecimalText } from '../../src/money.js'
import type { UsageEvent } from '../../src/usage-event.js'

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
 * The events of one window, in generation order. `prefix` keeps request ids of different data sets
 * apart (the batch day, the ingestion rows). Costs are exact nano-USD.
 */
export function* generateEvents(shape: Shape, window: { startMs: number; endMs: number }, prefix: string): Generator<UsageEvent> {
  const random = prng(shape.seed)
  const span = window.endMs - window.startMs
  for (let i = 0; i < shape.events; i++) {
    const c = Math.floor(random() * shape.clients)
    const u = Math.floor(random() * shape.users)
    const m = Math.floor(random() * shape.models)
    const input = 50 + Math.floor(random() * 4000)
    const output = 20 + Math.floor(random() * 1500)
    const occurred = window.startMs + Math.floor(random() * span)
    yield {
      request_id: `${prefix}-${i}`,
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
}

/** The same SQL as the embedded source's ingest (src/sources/sqlite.ts). */
export const INSERT_EVENT_SQL = `
  INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens,
                            total_tokens, cost_nano_usd, occurred_at, received_at)
  VALUES (@request_id, @client_org_id, @model, @external_user, @input_tokens, @output_tokens,
          @total_tokens, @cost_nano_usd, @occurred_at_ms, @received_at)
  ON CONFLICT (request_id) DO NOTHING`

/** Inserts events straight into a migrated database, in big transactions (setup speed only). */
export function insertEventsDirect(conn: Database.Database, events: Iterable<UsageEvent>, perTransaction: number, receivedAt: number): number {
  const insert = conn.prepare(INSERT_EVENT_SQL)
  const flush = conn.transaction((batch: UsageEvent[]) => {
    let n = 0
    for (const e of batch) n += insert.run({ ...e, received_at: receivedAt }).changes
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

/** The request body form of an event (SPEC §3), as a producer would send it. */
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
