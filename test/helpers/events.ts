// The one builder of usage records for tests. `event()` is a record as POST /usage/events takes it;
// `rawEvent()` is the same default record as a raw store's ingest() takes it (nano-USD, epoch ms).
// Every field has an ordinary default, so a test names only the fields it is about.
import { dayWindow } from '../../src/clock.js'
import type { UsageEvent } from '../../src/usage-event.js'
import type { TestApp } from './app.js'

const TZ = 'Europe/Warsaw'

/** One record of POST /usage/events (docs/api.md). */
export interface EventInput {
  request_id: string
  client_org_id: string
  model: string
  external_user?: string | null
  input_tokens: number
  output_tokens: number
  total_tokens?: number
  cost_usd: string | number
  timestamp: string
}

/** A record of 0.1 USD by acme's alice on m1, 10 + 5 tokens, at 2026-11-20 11:00 Warsaw. */
export function event(fields: Partial<EventInput> = {}): EventInput {
  return {
    request_id: 'r-1',
    client_org_id: 'acme',
    model: 'm1',
    external_user: 'alice',
    input_tokens: 10,
    output_tokens: 5,
    cost_usd: '0.1',
    timestamp: '2026-11-20T10:00:00Z',
    ...fields,
  }
}

/** The default record of `event()` as a raw store ingests it; total_tokens follows the token fields unless given. */
export function rawEvent(fields: Partial<UsageEvent> = {}): UsageEvent {
  const input = fields.input_tokens ?? 10
  const output = fields.output_tokens ?? 5
  return {
    request_id: 'r-1',
    client_org_id: 'acme',
    model: 'm1',
    external_user: 'alice',
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    cost_nano_usd: 100_000_000n,
    occurred_at_ms: Date.parse('2026-11-20T10:00:00Z'),
    ...fields,
  }
}

/** `n` (up to 4,000) records in the local day `date`, from noon Warsaw time, ten seconds apart. */
export function dayEvents(date: string, n: number, prefix = date, client = 'acme'): EventInput[] {
  const noon = dayWindow(date, TZ).startMs + 12 * 3600_000
  return Array.from({ length: n }, (_, i) =>
    event({
      request_id: `${prefix}-${String(i).padStart(4, '0')}`,
      client_org_id: client,
      model: i % 2 ? 'openai/gpt-4o' : 'anthropic/claude-sonnet-4',
      external_user: `u${i % 3}`,
      input_tokens: 100 + i,
      output_tokens: 10 + i,
      cost_usd: `0.00${i + 1}`,
      timestamp: new Date(noon + i * 10_000).toISOString(),
    }),
  )
}

/** Raw records stored for the local day `date`. */
export function rawCount(db: TestApp['db'], date: string): number {
  const w = dayWindow(date, TZ)
  return db.$client.prepare('SELECT count(*) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?').pluck().get(w.startMs, w.endMs) as number
}
