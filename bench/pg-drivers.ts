// node-postgres (`pg`, drizzle-orm/node-postgres) against postgres.js (`postgres`, drizzle-orm/postgres-js)
// on the work the PostgreSQL store will do. Both drivers in one run, on one server, in alternating
// order, so that their figures are comparable even on a loaded machine (absolute times are not).
//
//   npm run bench:pg-drivers -- [--events 100000] [--batch 5000] [--aggregate-rows 1000000]
//                              [--lookups 10000] [--rounds 2] [--url postgres://…]
//
// Without --url it starts a throwaway PostgreSQL 15 (test/helpers/postgres.ts); a --url must name a
// scratch database, where the script drops and recreates usage_events, aggregate_events and
// bigint_check. `pg` is the
// service's driver; the others are measured when present:
// `npm install --no-save postgres@3.4.9 pg-cursor@2.22.1`. Findings and figures: docs/postgresql.md#the-driver-pg-node-postgres.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres'
import { eq, sql } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { bigint, numeric, pgTable, text } from 'drizzle-orm/pg-core'
import { usageEvents } from '../src/db/postgres/schema.js'
import { launchPostgres, type PostgresServer } from '../test/helpers/postgres.js'

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '5000' },
    'aggregate-rows': { type: 'string', default: '1000000' },
    lookups: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '2' },
    url: { type: 'string' },
  },
})
const EVENTS = Number(args.events)
const BATCH = Number(args.batch)
const AGGREGATE_ROWS = Number(args['aggregate-rows'])
const LOOKUPS = Number(args.lookups)
const ROUNDS = Number(args.rounds)
const CURSOR_ROWS = 1_000
const POOL_SIZE = 4

type Db = PgDatabase<PgQueryResultHKT, Record<string, never>>
type EventRow = typeof usageEvents.$inferInsert
type Admin = (statement: string) => Promise<void>

interface Driver {
  name: string
  /** Shares its pool with another entry: measured on the streamed read only. */
  streamOnly?: boolean
  db: Db
  /** Rows affected by the last insert, read the way each driver reports it. */
  insertedCount(result: unknown): number
  /** Streams the grouped aggregate through a server-side cursor, CURSOR_ROWS at a time. */
  streamAggregate(query: string, onBatch: (rows: Array<Record<string, unknown>>) => void): Promise<void>
  /** One parameterised statement straight through the driver (no drizzle). */
  rawQuery(query: string, params: unknown[]): Promise<Array<Record<string, unknown>>>
  /** The same INSERT … SELECT FROM unnest(arrays) straight through the driver. */
  rawInsertUnnest(columns: unknown[][]): Promise<number>
  close(): Promise<void>
}

/** The packages that are not dependencies, loaded by name so that type-checking does not need them. */
async function optional<T>(name: string): Promise<T | undefined> {
  try {
    return (await import(name)) as T
  } catch {
    return undefined
  }
}

interface PgCursorModule {
  default: new (text: string, values?: unknown[]) => pg.Submittable & { read(rows: number): Promise<Array<Record<string, unknown>>>; close(): Promise<void> }
}
interface PostgresJsClient {
  unsafe(query: string, params?: unknown[]): Promise<Array<Record<string, unknown>> & { count: number }> & {
    cursor(rows: number): AsyncIterable<Array<Record<string, unknown>>>
  }
  end(): Promise<void>
}
interface PostgresJsModule {
  default: (url: string, options: Record<string, unknown>) => PostgresJsClient
}
interface DrizzlePostgresJsModule {
  drizzle(config: { client: PostgresJsClient }): unknown
}

/** pg, read through a SQL cursor (DECLARE … FETCH) or, when pg-cursor is installed, through it too. */
function pgDrivers(url: string, Cursor: PgCursorModule['default'] | undefined): Driver[] {
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE })
  const db = drizzlePg({ client: pool }) as unknown as Db
  const common = {
    db,
    insertedCount: (r: unknown) => (r as pg.QueryResult).rowCount ?? 0,
    rawQuery: async (query: string, params: unknown[]) => (await pool.query(query, params)).rows,
    rawInsertUnnest: async (columns: unknown[][]) => (await pool.query(UNNEST_INSERT, columns)).rowCount ?? 0,
  }
  let open = 0
  const close = async () => {
    open -= 1
    if (open === 0) await pool.end()
  }
  const drivers: Driver[] = [
    {
      name: 'pg, DECLARE CURSOR',
      ...common,
      async streamAggregate(query, onBatch) {
        const client = await pool.connect()
        try {
          await client.query('BEGIN READ ONLY')
          await client.query(`DECLARE day_read NO SCROLL CURSOR FOR ${query}`)
          for (;;) {
            const { rows } = await client.query(`FETCH ${CURSOR_ROWS} FROM day_read`)
            if (rows.length === 0) break
            onBatch(rows)
          }
          await client.query('COMMIT')
        } finally {
          client.release()
        }
      },
      close,
    },
  ]
  if (Cursor) {
    drivers.push({
      name: 'pg, pg-cursor',
      streamOnly: true,
      ...common,
      async streamAggregate(query, onBatch) {
        const client = await pool.connect()
        try {
          const cursor = client.query(new Cursor(query))
          for (;;) {
            const rows = await cursor.read(CURSOR_ROWS)
            if (rows.length === 0) break
            onBatch(rows)
          }
          await cursor.close()
        } finally {
          client.release()
        }
      },
      close,
    })
  }
  open = drivers.length
  return drivers
}

async function loadDrivers(url: string): Promise<Driver[]> {
  const missing: string[] = []
  const cursor = await optional<PgCursorModule>('pg-cursor')
  if (!cursor) missing.push('pg-cursor@2.22.1')
  const drivers = pgDrivers(url, cursor?.default)
  const postgresJs = await optional<PostgresJsModule>('postgres')
  const drizzleJs = postgresJs && (await optional<DrizzlePostgresJsModule>('drizzle-orm/postgres-js'))
  if (postgresJs && drizzleJs) {
    const client = postgresJs.default(url, { max: POOL_SIZE, onnotice: () => {} })
    drivers.push({
      name: 'postgres.js',
      db: drizzleJs.drizzle({ client }) as Db,
      insertedCount: (r) => (r as { count: number }).count,
      async streamAggregate(query, onBatch) {
        for await (const rows of client.unsafe(query).cursor(CURSOR_ROWS)) onBatch(rows)
      },
      rawQuery: async (query, params) => await client.unsafe(query, params),
      rawInsertUnnest: async (columns) => (await client.unsafe(UNNEST_INSERT, columns)).count,
      close: () => client.end(),
    })
  } else {
    missing.push('postgres@3.4.9')
  }
  if (missing.length > 0) console.log(`not measured: ${missing.join(', ')} (npm install --no-save ${missing.join(' ')})`)
  return drivers
}

const UNNEST_INSERT = `
  INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens,
                            total_tokens, cost_nano_usd, occurred_at, received_at)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                       $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
  ON CONFLICT (request_id) DO NOTHING`

// The grouped day read: one row per (client, user, model). SUM over BIGINT is NUMERIC in PostgreSQL.
const AGGREGATE_SQL = `
  SELECT client_org_id, external_user, model,
         SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
         SUM(total_tokens) AS total_tokens, SUM(cost_nano_usd) AS cost_nano_usd, COUNT(*) AS records
  FROM aggregate_events
  GROUP BY client_org_id, external_user, model`

function makeEvents(round: number, driver: number): EventRow[] {
  const base = Date.UTC(2026, 10, 27)
  return Array.from({ length: EVENTS }, (_, i) => ({
    request_id: `r${round}-${driver}-${i}`,
    client_org_id: `client-${i % 200}`,
    model: `model-${i % 11}`,
    external_user: `user-${i % 97}`,
    input_tokens: 1_000 + (i % 5_000),
    output_tokens: 100 + (i % 700),
    total_tokens: 1_100 + (i % 5_000) + (i % 700),
    cost_nano_usd: 1_000_000n + BigInt(i % 123_457),
    occurred_at: base + i * 800,
    received_at: base + i * 800 + 5,
  }))
}

/** Wall time, and this process's CPU time: the driver's own cost, much less disturbed by a loaded machine. */
interface Timing {
  ms: number
  cpuMs: number
}

async function timed<T>(fn: () => Promise<T>): Promise<Timing & { value: T }> {
  const started = performance.now()
  const cpu = process.cpuUsage()
  const value = await fn()
  const used = process.cpuUsage(cpu)
  return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, value }
}

function heapUsedMb(): number {
  return process.memoryUsage().heapUsed / 2 ** 20
}

function collectGarbage(): void {
  ;(globalThis as { gc?: () => void }).gc?.()
}

/** Absent where an entry does not measure the figure (streamOnly). */
interface Figures {
  insertDrizzle?: Timing
  insertUnnest?: Timing
  aggregate: Timing
  aggregateGroups: number
  aggregatePeakHeapMb: number
  lookupPrepared?: Timing
  lookupRaw?: Timing
}

const timing = ({ ms, cpuMs }: Timing): Timing => ({ ms, cpuMs })

async function measureWrites(driver: Driver, events: EventRow[], admin: Admin) {
  // (a) ingestion: multi-row INSERT … ON CONFLICT DO NOTHING, one transaction per batch.
  await admin('TRUNCATE usage_events')
  const insert = await timed(async () => {
    let inserted = 0
    for (let i = 0; i < events.length; i += BATCH) {
      const batch = events.slice(i, i + BATCH)
      inserted += await driver.db.transaction(async (tx) => driver.insertedCount(await tx.insert(usageEvents).values(batch).onConflictDoNothing()))
    }
    return inserted
  })
  if (insert.value !== EVENTS) throw new Error(`${driver.name}: inserted ${insert.value} of ${EVENTS}`)
  // The same rows again through unnest(): ten array parameters per batch instead of ten per row.
  await admin('TRUNCATE usage_events')
  const unnest = await timed(async () => {
    let inserted = 0
    for (let i = 0; i < events.length; i += BATCH) {
      const columns: unknown[][] = [[], [], [], [], [], [], [], [], [], []]
      for (const e of events.slice(i, i + BATCH)) {
        const values = [e.request_id, e.client_org_id, e.model, e.external_user, e.input_tokens, e.output_tokens, e.total_tokens, e.cost_nano_usd.toString(), e.occurred_at, e.received_at]
        values.forEach((v, c) => columns[c]!.push(v))
      }
      inserted += await driver.rawInsertUnnest(columns)
    }
    return inserted
  })
  if (unnest.value !== EVENTS) throw new Error(`${driver.name}: unnest inserted ${unnest.value} of ${EVENTS}`)
  return { insertDrizzle: timing(insert), insertUnnest: timing(unnest) }
}

async function measureStream(driver: Driver) {
  // (b) the grouped aggregate, streamed and converted as the source will; the heap is sampled per batch.
  collectGarbage()
  const heapBefore = heapUsedMb()
  let peak = heapBefore
  let groups = 0
  let cost = 0n
  let records = 0
  const aggregate = await timed(() =>
    driver.streamAggregate(AGGREGATE_SQL, (rows) => {
      for (const r of rows) {
        cost += BigInt(r.cost_nano_usd as string)
        records += Number(r.records)
        groups += 1
      }
      peak = Math.max(peak, heapUsedMb())
    }),
  )
  if (records !== AGGREGATE_ROWS) throw new Error(`${driver.name}: the aggregate counted ${records} of ${AGGREGATE_ROWS} records`)
  if (cost !== expectedAggregateCost()) throw new Error(`${driver.name}: aggregate cost ${cost} != ${expectedAggregateCost()}`)
  return { aggregate: timing(aggregate), aggregateGroups: groups, aggregatePeakHeapMb: peak - heapBefore }
}

async function measureLookups(driver: Driver, events: EventRow[], statementName: string) {
  // (c) small round trips: one row by key, sequentially, as a point read would.
  const keys = Array.from({ length: LOOKUPS }, (_, i) => events[(i * 7919) % events.length]!.request_id)
  const byKey = driver.db
    .select()
    .from(usageEvents)
    .where(eq(usageEvents.request_id, sql.placeholder('id')))
    .prepare(statementName)
  const prepared = await timed(async () => {
    for (const id of keys) {
      const rows = (await byKey.execute({ id })) as Array<{ request_id: string }>
      if (rows[0]?.request_id !== id) throw new Error(`${driver.name}: lookup of ${id} failed`)
    }
  })
  const raw = await timed(async () => {
    for (const id of keys) {
      const rows = await driver.rawQuery('SELECT * FROM usage_events WHERE request_id = $1', [id])
      if (rows[0]?.request_id !== id) throw new Error(`${driver.name}: raw lookup of ${id} failed`)
    }
  })
  return { lookupPrepared: timing(prepared), lookupRaw: timing(raw) }
}

async function measure(driver: Driver, round: number, index: number, admin: Admin): Promise<Figures> {
  const stream = await measureStream(driver)
  if (driver.streamOnly) return stream
  const events = makeEvents(round, index)
  const writes = await measureWrites(driver, events, admin)
  const lookups = await measureLookups(driver, events, `lookup_${round}_${index}`)
  return { ...writes, ...stream, ...lookups }
}

/** cost_nano_usd of aggregate row i is 1e9 + (i % 1000), plus 2^62 for i = 0 and 1 (see setup). */
function expectedAggregateCost(): bigint {
  let total = 0n
  for (let i = 1; i <= AGGREGATE_ROWS; i++) total += 1_000_000_000n + BigInt(i % 1000)
  return total + 2n * 2n ** 62n
}

const bigints = pgTable('bigint_check', {
  id: text('id').primaryKey(),
  nano: bigint('nano', { mode: 'bigint' }).notNull(),
  exact: numeric('exact', { mode: 'bigint' }),
})

const EXTREMES: Array<[string, bigint]> = [
  ['max', 2n ** 63n - 1n],
  ['min', -(2n ** 63n)],
  ['above-2^53', 2n ** 53n + 1n],
  ['nano-1', 1n],
]

/** (d) BIGINT: values above 2^53 must come back exact, as written and as summed. */
async function checkBigints(driver: Driver): Promise<string[]> {
  const notes: string[] = []
  await driver.db.execute(sql`DELETE FROM bigint_check`)
  await driver.db.insert(bigints).values(EXTREMES.map(([id, nano]) => ({ id, nano, exact: nano })))
  const back = await driver.db.select().from(bigints)
  for (const [id, nano] of EXTREMES) {
    const row = back.find((r) => r.id === id)
    if (row?.nano !== nano) throw new Error(`${driver.name}: bigint ${id} came back as ${row?.nano}`)
    if (row.exact !== nano) throw new Error(`${driver.name}: numeric ${id} came back as ${row.exact}`)
  }
  notes.push('drizzle bigint/numeric { mode: "bigint" } round-trip 2^63-1, -2^63, 2^53+1 exactly')
  const [raw] = await driver.rawQuery(
    "SELECT nano, nano::numeric + nano AS doubled, (SELECT SUM(nano) FROM bigint_check WHERE id IN ('max', 'above-2^53')) AS summed FROM bigint_check WHERE id = 'max'",
    [],
  )
  const doubled = raw!.doubled
  const summed = raw!.summed
  notes.push(`raw int8 → ${typeof raw!.nano} ${String(raw!.nano)}; numeric → ${typeof doubled}`)
  if (BigInt(String(doubled)) !== 2n * (2n ** 63n - 1n)) throw new Error(`${driver.name}: numeric lost precision: ${String(doubled)}`)
  if (BigInt(String(summed)) !== 2n ** 63n - 1n + 2n ** 53n + 1n) throw new Error(`${driver.name}: SUM(bigint) lost precision: ${String(summed)}`)
  notes.push('SUM(bigint) beyond 2^63 arrives as exact numeric text')
  return notes
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function main() {
  let server: PostgresServer | undefined
  let url = args.url
  if (!url) {
    const started = performance.now()
    server = await launchPostgres()
    console.log(`PostgreSQL started in ${Math.round(performance.now() - started)} ms (initdb + start)`)
    url = server.url
  }
  const admin: Admin = async (statement) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query(statement)
    } finally {
      await client.end()
    }
  }
  try {
    // The schema's own usage_events (from its migration) for (a) and (c); (b) reads a plain table of
    // the same columns, generated in the server.
    const migration = readFileSync(fileURLToPath(new URL('../drizzle/postgres/0000_init.sql', import.meta.url)), 'utf8')
    await admin('DROP TABLE IF EXISTS usage_events, aggregate_events, bigint_check')
    for (const statement of migration.split('--> statement-breakpoint')) {
      if (/"usage_events"/.test(statement)) await admin(statement)
    }
    await admin('CREATE TABLE bigint_check (id text PRIMARY KEY, nano bigint NOT NULL, exact numeric)')
    const setup = await timed(() =>
      admin(`
        CREATE TABLE aggregate_events AS
        SELECT 'client-' || (i % 500) AS client_org_id, 'user-' || (i % 37) AS external_user, 'model-' || (i % 7) AS model,
               (1000 + i % 5000)::bigint AS input_tokens, (100 + i % 700)::bigint AS output_tokens,
               (1100 + i % 5000 + i % 700)::bigint AS total_tokens,
               (1000000000 + i % 1000 + CASE WHEN i <= 2 THEN 4611686018427387904 ELSE 0 END)::bigint AS cost_nano_usd
        FROM generate_series(1, ${AGGREGATE_ROWS}) AS i`),
    )
    // i = 1 and 2 carry 2^62 each: the total passes 2^63, so only an exact NUMERIC sum gets it right.
    await admin('VACUUM ANALYZE aggregate_events')
    console.log(`aggregate table: ${AGGREGATE_ROWS} rows in ${Math.round(setup.ms)} ms`)

    const drivers = await loadDrivers(url)
    if (drivers.length === 0) throw new Error('no driver installed')
    for (const d of drivers.filter((d) => !d.streamOnly)) console.log(`${d.name}: ${(await checkBigints(d)).join('; ')}`)
    const results = new Map<string, Figures[]>(drivers.map((d) => [d.name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so neither driver always runs on a warmer server.
      const order = round % 2 === 0 ? drivers : [...drivers].reverse()
      for (const d of order) {
        const figures = await measure(d, round, drivers.indexOf(d), admin)
        results.get(d.name)!.push(figures)
        console.log(`round ${round + 1} ${d.name}: ${JSON.stringify(figures, (_, v: unknown) => (typeof v === 'number' ? Math.round(v) : v))}`)
      }
    }
    for (const d of drivers) await d.close()

    const rows: Array<[string, (f: Figures) => Timing | undefined]> = [
      [`(a) insert ${EVENTS} events, drizzle multi-row INSERT, ${BATCH}/transaction`, (f) => f.insertDrizzle],
      [`(a') the same through INSERT … SELECT FROM unnest($1::text[], …)`, (f) => f.insertUnnest],
      [`(b) stream ${AGGREGATE_ROWS} rows grouped (cursor, ${CURSOR_ROWS}/read)`, (f) => f.aggregate],
      [`(c) ${LOOKUPS} single-row SELECTs by key, drizzle prepared`, (f) => f.lookupPrepared],
      [`(c') the same through the driver, no drizzle`, (f) => f.lookupRaw],
    ]
    console.log(`\nmedian of ${ROUNDS} round(s), wall ms / client CPU ms; ${drivers.map((d) => d.name).join(' | ')}`)
    for (const [label, pick] of rows) {
      const cells = drivers.map((d) => {
        const measured = results.get(d.name)!.map(pick).filter((x): x is Timing => x !== undefined)
        if (measured.length === 0) return '–'
        return `${median(measured.map((x) => x.ms)).toFixed(0)} / ${median(measured.map((x) => x.cpuMs)).toFixed(0)}`
      })
      console.log(`${label}: ${cells.join(' | ')}`)
    }
    const heap = drivers.map((d) => `${median(results.get(d.name)!.map((f) => f.aggregatePeakHeapMb)).toFixed(1)} MB`)
    console.log(`(b) peak heap growth while streaming: ${heap.join(' | ')}`)
    console.log(`(b) groups streamed: ${drivers.map((d) => results.get(d.name)![0]!.aggregateGroups).join(' | ')}`)
  } finally {
    await server?.destroy()
  }
}

await main()
