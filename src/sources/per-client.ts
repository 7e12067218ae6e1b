// Aggregating a day client by client, at most `concurrency` queries in flight
// (INFLUXDB_AGGREGATION_BATCH_SIZE). On InfluxDB 1.x this is much faster than one grouped query
// over many series (bench/influx-grouping.ts), and a failing client fails alone: the batch can
// replace the summaries of the clients that succeeded and report the others (docs/data-model.md#the-batch).
import type { AggregateRow, UsageSource } from './types.js'

export type ClientOutcome = { clientOrgId: string; rows: AggregateRow[] } | { clientOrgId: string; error: Error }

/**
 * Yields one outcome per client as each finishes (order unspecified). A client's rows are held
 * until its query ends, so that a query failing halfway never passes on a partial client.
 */
export async function* aggregateByClient(
  source: UsageSource,
  window: { startMs: number; endMs: number },
  clients: string[],
  concurrency: number,
  signal?: AbortSignal,
): AsyncGenerator<ClientOutcome> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer: ${concurrency}`)
  const queue = [...clients]
  const running = new Map<number, Promise<[number, ClientOutcome]>>()
  let nextId = 0
  const start = (clientOrgId: string) => {
    const id = nextId++
    running.set(
      id,
      (async (): Promise<[number, ClientOutcome]> => {
        try {
          const rows: AggregateRow[] = []
          for await (const r of source.aggregate(window, { clientOrgId, signal })) rows.push(r)
          return [id, { clientOrgId, rows }]
        } catch (e) {
          return [id, { clientOrgId, error: e instanceof Error ? e : new Error(String(e)) }]
        }
      })(),
    )
  }
  while (queue.length > 0 && running.size < concurrency) start(queue.shift()!)
  while (running.size > 0) {
    const [id, outcome] = await Promise.race(running.values())
    running.delete(id)
    signal?.throwIfAborted()
    if (queue.length > 0) start(queue.shift()!)
    yield outcome
  }
}
