// Shared data for the lifecycle tests.
import { dayWindow } from '../../src/clock.js'
import type { EventInput, TestApp } from './app.js'

const TZ = 'Europe/Warsaw'

/** `n` (up to 4,000) events in the local day `date`, from noon Warsaw time, ten seconds apart. */
export function dayEvents(date: string, n: number, prefix = date, client = 'acme'): EventInput[] {
  const noon = dayWindow(date, TZ).startMs + 12 * 3600_000
  return Array.from({ length: n }, (_, i) => ({
    request_id: `${prefix}-${String(i).padStart(4, '0')}`,
    client_org_id: client,
    model: i % 2 ? 'openai/gpt-4o' : 'anthropic/claude-sonnet-4',
    external_user: `u${i % 3}`,
    input_tokens: 100 + i,
    output_tokens: 10 + i,
    cost_usd: `0.00${i + 1}`,
    timestamp: new Date(noon + i * 10_000).toISOString(),
  }))
}

export function rawCount(db: TestApp['db'], date: string): number {
  const w = dayWindow(date, TZ)
  return db.$client.prepare('SELECT count(*) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?').pluck().get(w.startMs, w.endMs) as number
}

