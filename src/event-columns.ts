// Usage records in a form that crosses between threads cheaply: one string and two typed arrays
// (moved, not copied) instead of thousands of objects, which postMessage would clone one by one.
import type { UsageEvent } from './usage-event.js'

export interface EventColumns {
  /** request_id, client_org_id, model, external_user of each record, one after the other. */
  text: string
  /** The UTF-16 length of each of those strings. */
  lengths: Uint32Array<ArrayBuffer>
  /** input_tokens, output_tokens, total_tokens, occurred_at_ms of each record. */
  numbers: Float64Array<ArrayBuffer>
  costs: BigInt64Array<ArrayBuffer>
}

export function encodeEvents(events: readonly UsageEvent[]): EventColumns {
  const n = events.length
  const strings: string[] = new Array(n * 4)
  const lengths = new Uint32Array(n * 4)
  const numbers = new Float64Array(n * 4)
  const costs = new BigInt64Array(n)
  for (let i = 0; i < n; i++) {
    const e = events[i]!
    strings[i * 4] = e.request_id
    strings[i * 4 + 1] = e.client_org_id
    strings[i * 4 + 2] = e.model
    strings[i * 4 + 3] = e.external_user
    numbers[i * 4] = e.input_tokens
    numbers[i * 4 + 1] = e.output_tokens
    numbers[i * 4 + 2] = e.total_tokens
    numbers[i * 4 + 3] = e.occurred_at_ms
    costs[i] = e.cost_nano_usd
  }
  for (let k = 0; k < strings.length; k++) lengths[k] = strings[k]!.length
  return { text: strings.join(''), lengths, numbers, costs }
}

/** The records of encodeEvents; throws when the columns do not line up. */
export function decodeEvents({ text, lengths, numbers, costs }: EventColumns): UsageEvent[] {
  const n = costs.length
  let total = 0
  for (let k = 0; k < lengths.length; k++) total += lengths[k]!
  if (lengths.length !== n * 4 || numbers.length !== n * 4 || total !== text.length) {
    throw new Error(`columns of ${n} records hold ${lengths.length} strings of ${total} characters in ${text.length} and ${numbers.length} numbers`)
  }
  let at = 0
  const next = (k: number) => text.slice(at, (at += lengths[k]!))
  const events: UsageEvent[] = new Array(n)
  for (let i = 0; i < n; i++) {
    events[i] = {
      request_id: next(i * 4),
      client_org_id: next(i * 4 + 1),
      model: next(i * 4 + 2),
      external_user: next(i * 4 + 3),
      input_tokens: numbers[i * 4]!,
      output_tokens: numbers[i * 4 + 1]!,
      total_tokens: numbers[i * 4 + 2]!,
      cost_nano_usd: costs[i]!,
      occurred_at_ms: numbers[i * 4 + 3]!,
    }
  }
  return events
}
