// Builds an isolated app per test through the production composition root (createServices): a real
// SQLite file in the test's own folder, the production server options, a fixed clock, and NBP at a
// closed loopback port (a day gets no PLN, never a guessed one) unless the test says otherwise.
// Everything is closed by the test's teardown.
import type { Test } from 'tap'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import pino, { type Logger } from 'pino'
import { buildApp, type App } from '../../src/app.js'
import { fixedClock } from '../../src/clock.js'
import { loadConfig, type Config } from '../../src/config.js'
import type { Db } from '../../src/db/sqlite/open.js'
import type { SqliteStore } from '../../src/db/sqlite/store.js'
import { GENERATION_KEY } from '../../src/db/store.js'
import type { RateProvider } from '../../src/rates/types.js'
import { createServices, type ServiceDeps, type Services } from '../../src/services.js'
import type { UsageSource } from '../../src/sources/types.js'
import type { EventInput } from './events.js'
import { deadPort } from './fake-nbp.js'

/** 2026-11-28 13:00 Warsaw: "yesterday" is 2026-11-27. */
export const DEFAULT_NOW_MS = Date.parse('2026-11-28T12:00:00Z')

export interface TestApp {
  app: App
  services: Services
  store: SqliteStore
  /** The store's writer connection, for assertions on the rows themselves. */
  db: Db
  config: Config
  clock: ReturnType<typeof fixedClock>
  source: UsageSource
  dbPath: string
}

export interface TestAppOptions {
  env?: Record<string, string>
  nowMs?: number
  /** The service's clock (tests that drive timers from it); default a fixed clock at `nowMs`. */
  clock?: ReturnType<typeof fixedClock>
  /** A rate provider in place of NBP's (e.g. one that holds a run in flight). */
  rates?: RateProvider
  /** The raw store, given the store and the configured one (fault injection). */
  source?: ServiceDeps['source']
  /** Where the database goes; default the test's own testdir (one app per test). */
  dir?: string
  /** When the database is first created (database_metadata.created_at); default `nowMs`. */
  dbCreatedMs?: number
  /** The service's logger; default silent (a test that reads the log lines passes its own). */
  log?: Logger
  /** Other composition-root options (timers, NBP client options, a read-only store…). */
  deps?: Partial<ServiceDeps>
}

/** The environment of a test service: its own file, no scheduler, silent, NBP unreachable and not retried. */
export async function testEnv(dbPath: string, env: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    SQLITE_PATH: dbPath,
    BATCH_SCHEDULER_ENABLED: 'false',
    LOG_LEVEL: 'silent',
    NBP_API_URL: `http://127.0.0.1:${await deadPort()}/api`,
    NBP_MAX_RETRIES: '0',
    NBP_TIMEOUT_MS: '2000',
    ...env,
  }
}

export async function buildTestApp(t: Test, options: TestAppOptions = {}): Promise<TestApp> {
  const dir = options.dir ?? t.testdir({})
  const dbPath = join(dir, 'usage.db')
  const config = loadConfig(await testEnv(dbPath, options.env))
  const clock = options.clock ?? fixedClock(options.nowMs ?? DEFAULT_NOW_MS)
  const services = await createServices(config, {
    log: options.log ?? pino({ level: 'silent' }),
    clock,
    createdAtClock: fixedClock(options.dbCreatedMs ?? clock.now()),
    rates: options.rates,
    source: options.source,
    ...options.deps,
  })
  const app = await buildApp(config, services)
  await app.ready()
  t.teardown(async () => {
    await services.stop(0)
    await app.close()
    await services.close()
  })
  const store = services.store as SqliteStore
  return { app, services, store, db: store.db, config, clock, source: services.source, dbPath }
}

export async function postEvents(app: App, events: EventInput[], headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/usage/events', payload: { events }, headers })
}

export async function runBatch(app: App, body: object, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: body, headers })
}

/** A digest of every row of every table but the write generation: "nothing changed" means the same digest. */
export function databaseDigest(db: Db): string {
  const hash = createHash('sha256')
  const tables = db.$client
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all() as string[]
  for (const table of tables) {
    hash.update(`\n#${table}\n`)
    // The write generation is a cache token, not stored data (src/db/sqlite/generation.ts).
    const skip = table === 'database_metadata' ? ` WHERE key <> '${GENERATION_KEY}'` : ''
    for (const row of db.$client.prepare(`SELECT * FROM "${table}"${skip} ORDER BY rowid`).raw().all()) hash.update(JSON.stringify(row))
  }
  return hash.digest('hex')
}

/** All rows of a summary table for a date, without volatile columns, sorted by natural key. */
export function summaryRows(db: Db, table: string, date: string): Record<string, unknown>[] {
  return db.$client.prepare(`SELECT * FROM "${table}" WHERE usage_date = ? ORDER BY id`).all(date) as Record<string, unknown>[]
}

/**
 * Independent exact arithmetic for expectations: decimal text → nano-units, and a half-even
 * multiply written here from scratch (deliberately not src/money.ts).
 */
export function expectNano(decimal: string): bigint {
  const [int, frac = ''] = decimal.split('.')
  if (frac.length > 9) throw new Error('test helper takes at most 9 decimals')
  return BigInt(int!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'))
}

export function expectTimesRate(nano: bigint, rate: string): bigint {
  const [int, frac = ''] = rate.split('.')
  const scale = 10n ** BigInt(frac.length)
  const product = nano * BigInt(int! + frac)
  const q = product / scale
  const r = product % scale
  if (r * 2n > scale) return q + 1n
  if (r * 2n < scale) return q
  return q % 2n === 0n ? q : q + 1n
}

export function nanoText(nano: bigint): string {
  const s = nano.toString().padStart(10, '0')
  return `${s.slice(0, -9)}.${s.slice(-9)}`
}

/** A rate provider that answers "no rate" only once released: keeps a run in flight on purpose. */
export function gatedRates(): { rates: RateProvider; release: () => void } {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const rates: RateProvider = {
    resolveUsdPlnRate: async () => {
      await gate
      return { ok: false, reason: 'gated by the test' }
    },
  }
  return { rates, release }
}

/**
 * The production wiring listening on a free 127.0.0.1 port, for tests that need real sockets (the
 * request logs, redaction): stopped by the test's teardown, or earlier by `close()`.
 */
export async function listenService(t: Test, config: Config, log: Logger): Promise<{ base: string; close: () => Promise<void>; services: Services }> {
  const services = await createServices(config, { log, clock: fixedClock(DEFAULT_NOW_MS) })
  const app = await buildApp(config, services)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await services.stop(1_000)
    await app.close()
    await services.close()
  }
  t.teardown(close)
  return { base, close, services }
}
