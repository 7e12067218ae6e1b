// How should a day be aggregated on InfluxDB 1.x: one grouped query for the whole day, or one
// query per client (sequential, or INFLUXDB_AGGREGATION_BATCH_SIZE at a time)? Writes one
// deterministic day of points into a throwaway local influxd and times each strategy.
//   npx tsx bench/influx-grouping.ts [clients=500] [users=20] [models=20] [pointsPerSeries=5]
import { dayWindow } from '../src/clock.js'
import { createInfluxQLSource } from '../src/sources/influxql.js'
import type { AggregateRow, UsageSource } from '../src/sources/types.js'
import type { UsageEvent } from '../src/usage-event.js'
import { startInfluxd } from '../test/helpers/influxd.js'

const [CLIENTS, USERS, MODELS, PER_SERIES] = [500, 20, 20, 5].map((d, i) => Number(process.argv[2 + i] ?? d)) as [number, number, number, number]
const DAY = '2026-03-29'
const TZ = 'Europe/Warsaw'
const WRITE_BATCH = 5_000
const WRITE_CONCURRENCY = 2

const teardowns: Array<() => unknown> = []
const fakeTap = { teardown: (fn: () => unknown) => void teardowns.push(fn), comment: () => {} }

function* generate(windowStart: number, windowMs: number): Generator<UsageEvent> {
  let n = 0
  for (let c = 0; c < CLIENTS; c++) {
    for (let u = 0; u < USERS; u++) {
      for (let m = 0; m < MODELS; m++) {
        for (let k = 0; k < PER_SERIES; k++) {
          n++
          // A fixed stride spreads points over the whole (23-hour) day, deterministically.
          const at = windowStart + ((n * 7_919_993) % windowMs)
          yield {
            request_id: `r${n}`,
            client_org_id: `client_${c.toString().padStart(4, '0')}`,
            external_user: `user_${u}`,
            model: `vendor/model-${m}`,
            input_tokens: 100 + (n % 1000),
            output_tokens: 50 + (n % 500),
            total_tokens: 150 + (n % 1000) + (n % 500),
            cost_nano_usd: BigInt(150 + (n % 100_000)),
            occurred_at_ms: at,
          }
        }
      }
    }
  }
}

async function drain(rows: AsyncIterable<AggregateRow>): Promise<{ rows: number; records: number; cost: bigint }> {
  let count = 0
  let records = 0
  let cost = 0n
  for await (const r of rows) {
    count++
    records += r.total_requests
    cost += BigInt(r.raw_cost_nano_usd)
  }
  return { rows: count, records, cost }
}

async function perClient(source: UsageSource, window: { startMs: number; endMs: number }, clients: string[], concurrency: number) {
  const totals = { rows: 0, records: 0, cost: 0n }
  let next = 0
  const worker = async () => {
    while (next < clients.length) {
      const client = clients[next++]!
      const r = await drain(source.aggregate(window, { clientOrgId: client }))
      totals.rows += r.rows
      totals.records += r.records
      totals.cost += r.cost
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return totals
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now()
  const result = await fn()
  const ms = performance.now() - started
  console.log(`${label.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(8)} s   ${JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`)
  return result
}

async function main() {
  const server = await startInfluxd(fakeTap, 'bench')
  console.log(`influxd at ${server.url}`)
  const source = createInfluxQLSource({
    url: server.url,
    database: 'bench',
    measurement: 'usage_tracking',
    auth: { kind: 'none' },
    writeApi: { kind: 'v1' },
    timeoutMs: 600_000,
  })
  const window = dayWindow(DAY, TZ)
  const total = CLIENTS * USERS * MODELS * PER_SERIES
  console.log(`influxd ${server.url}; ${total} points: ${CLIENTS} clients × ${USERS} users × ${MODELS} models × ${PER_SERIES}`)

  await timed(`write ${total} points (${WRITE_BATCH}/request, ${WRITE_CONCURRENCY} at a time)`, async () => {
    const events = generate(window.startMs, window.endMs - window.startMs)
    let written = 0
    const worker = async () => {
      for (;;) {
        const batch: UsageEvent[] = []
        for (let i = 0; i < WRITE_BATCH; i++) {
          const e = events.next()
          if (e.done) break
          batch.push(e.value)
        }
        if (batch.length === 0) return
        const result = await source.ingest(batch)
        written += result.accepted
      }
    }
    await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, worker))
    return { written }
  })

  const clients: string[] = []
  for (let c = 0; c < CLIENTS; c++) clients.push(`client_${c.toString().padStart(4, '0')}`)

  // Twice each: the first grouped run also warms the series index and page cache.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}`)
    await timed('  one grouped query for the day', () => drain(source.aggregate(window)))
    await timed('  SHOW TAG VALUES client_org_id', async () => {
      let n = 0
      for await (const s of source.query('SHOW TAG VALUES FROM "usage_tracking" WITH KEY = "client_org_id"')) n += s.values?.length ?? 0
      return { clients: n }
    })
    await timed('  per client, sequential', () => perClient(source, window, clients, 1))
    await timed('  per client, 5 at a time', () => perClient(source, window, clients, 5))
  }
}

try {
  await main()
  if (process.env.BENCH_KEEP) await new Promise((r) => setTimeout(r, Number(process.env.BENCH_KEEP)))
} finally {
  for (const fn of teardowns.reverse()) await fn()
}
