// npm run chaos [-- --events N --seconds S --pg-events N --only kill,nbp,malformed,concurrent,influx,postgres-restart,leader]:
// the reliability suite. Slow, loopback only, bounded in time, not part of npm test. Prints what it tried and what held; exits 1 when something did not hold.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { buildApp, type App } from '../src/app.js'
import { createBatchService } from '../src/batch/service.js'
import { dayWindow, fixedClock, systemClock } from '../src/clock.js'
import { loadConfig } from '../src/config.js'
import { openDb, type Db } from '../src/db/sqlite/open.js'
import { openSqliteStore, type SqliteStore } from '../src/db/sqlite/store.js'
import { createServices } from '../src/services.js'
import { createNbpClient } from '../src/rates/nbp.js'
import { createRateProvider } from '../src/rates/resolve.js'
import { abandonStaleRuns } from '../src/scheduler/recovery.js'
import type { RateProvider } from '../src/rates/types.js'
import { createSqliteSource } from '../src/sources/sqlite.js'
import { generateEvents, insertEventsDirect, toLineProtocol, toRequestRecord, type Shape } from './lib/data.js'
import { startInfluxd as startTestInfluxd } from '../test/helpers/influxd.js'
import { influxdPath, writeLines } from './lib/influxd.js'
import { loadInfluxSourceFactory } from './lib/influxql.js'
import pg from 'pg'
import { launchPostgres, postgresUnavailable, type PostgresServer } from '../test/helpers/postgres.js'
import { startFakeNbp } from '../test/helpers/fake-nbp.js'
import { isLeader, startReplica, until, type Replica } from '../test/helpers/replicas.js'

const TIME_ZONE = 'Europe/Warsaw'
const NOW_MS = Date.parse('2026-11-28T12:00:00Z')
const DAY = '2026-11-20'
const silent = pino({ level: 'silent' })
const WAL_GROWTH_BEFORE_KILL_BYTES = 4 * 1024 * 1024
const SUMMARY_TABLES = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']
/** Columns that legitimately differ between two runs producing the same figures. */
const VOLATILE_COLUMNS = new Set(['id', 'batch_run_id', 'created_at', 'updated_at'])

interface Check {
  name: string
  tried: string
  held: boolean
  detail: string
}
const checks: Check[] = []

function say(message: string) {
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

function record(check: Check) {
  checks.push(check)
  say(`${check.held ? 'HELD' : 'DID NOT HOLD'}: ${check.name} — ${check.detail}`)
}

const fixedRate: RateProvider = {
  resolveUsdPlnRate: async (usageDate) => ({
    ok: true,
    rate: { usage_date: usageDate, rate: '4.0341', effective_date: '2026-11-19', table_no: '225/A/NBP/2026', source: 'nbp', policy: 'previous-business-day', fetched_at: new Date(NOW_MS).toISOString() },
  }),
}

/** The three summary tables of a date without volatile columns, in natural-key order: equal text ⇔ equal figures. */
function summaryFingerprint(db: Db, date: string): { digest: string; rows: number } {
  const hash = createHash('sha256')
  let rows = 0
  for (const table of SUMMARY_TABLES) {
    const all = db.$client.prepare(`SELECT * FROM ${table} WHERE usage_date = ?`).all(date) as Record<string, unknown>[]
    const lines = all.map((r) => JSON.stringify(Object.entries(r).filter(([k]) => !VOLATILE_COLUMNS.has(k)))).sort()
    rows += lines.length
    hash.update(`#${table}\n${lines.join('\n')}`)
  }
  return { digest: hash.digest('hex'), rows }
}

/** sha256 over every row of every table (the same digest as test/helpers/app.ts). */
function databaseDigest(db: Db): string {
  const hash = createHash('sha256')
  const tables = db.$client.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[]
  for (const table of tables) {
    hash.update(`\n#${table}\n`)
    for (const row of db.$client.prepare(`SELECT * FROM "${table}" ORDER BY rowid`).raw().all()) hash.update(JSON.stringify(row))
  }
  return hash.digest('hex')
}

async function runBatchInProcess(path: string, date: string, ratesFor: (store: SqliteStore) => RateProvider = () => fixedRate) {
  const store = openSqliteStore({ path })
  const source = createSqliteSource({ store, clock: systemClock })
  const batch = createBatchService({ store, source, rates: ratesFor(store), clock: systemClock, log: silent, timeZone: TIME_ZONE, defaultMarkupRate: '1.3' })
  try {
    return { run: await batch.runDate(date, 'cli'), fingerprint: summaryFingerprint(store.db, date) }
  } finally {
    await batch.stop(0)
    await source.close()
    await store.close()
  }
}

// ── 1. kill -9 mid-batch, then restart ────────────────────────────────────────────────────────
async function killMidBatch(dir: string, shape: Shape) {
  const path = join(dir, 'kill.db')
  const db = openDb({ path })
  insertEventsDirect(db.$client, generateEvents(shape, dayWindow(DAY, TIME_ZONE), 'day'), 50_000, NOW_MS)
  db.$client.pragma('wal_checkpoint(TRUNCATE)')
  db.$client.close()
  const cleanPath = join(dir, 'clean.db')
  copyFileSync(path, cleanPath)
  const clean = await runBatchInProcess(cleanPath, DAY)
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child-batch', path, DAY], { stdio: ['ignore', 'ignore', 'inherit'] })
  const watcher = openDb({ path, migrate: false })
  const runningRow = watcher.$client.prepare("SELECT id, owner FROM influxdb_batch_runs WHERE processing_date = ? AND status = 'running'")
  const deadline = Date.now() + 60_000
  let seen: { id: number; owner: string } | undefined
  while (!seen && Date.now() < deadline && child.exitCode === null) {
    seen = runningRow.get(DAY) as typeof seen
    if (!seen) await new Promise((r) => setTimeout(r, 20))
  }
  if (!seen) {
    child.kill('SIGKILL')
    watcher.$client.close()
    record({ name: 'kill -9 mid-batch', tried: 'SIGKILL a batch child', held: false, detail: 'the child never showed a running run' })
    return
  }
  // Kill inside the summary write: the aggregation only reads, so once the WAL grows by more than
  // the run row and heartbeats could write, the replace transaction is spilling pages into it.
  const walPath = `${path}-wal`
  const walSize = () => (existsSync(walPath) ? statSync(walPath).size : 0)
  const walAtStart = walSize()
  const killStarted = Date.now()
  while (walSize() < walAtStart + WAL_GROWTH_BEFORE_KILL_BYTES && child.exitCode === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5))
  }
  const delayMs = Date.now() - killStarted
  const walAtKill = walSize()
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
  const after = watcher.$client.prepare('SELECT status FROM influxdb_batch_runs WHERE id = ?').get(seen.id) as { status: string }
  const partial = watcher.$client.prepare('SELECT count(*) AS n FROM client_user_daily_usage WHERE batch_run_id = ?').get(seen.id) as { n: number }
  watcher.$client.close()
  say(`killed the batch child ${delayMs} ms after its run #${seen.id} showed running, with the WAL grown to ${walAtKill} bytes (write in progress); run status now ${after.status}, rows written by it ${partial.n}`)

  // Restart: the dead `running` row blocks the date until someone reclaims it. The service's start-up
  // recovery does that (its owner pid@host is dead); here it runs as a restarted service would run it.
  const store2 = openSqliteStore({ path })
  const abandoned = await abandonStaleRuns({ store: store2, clock: systemClock, log: silent, batch: { owner: `${process.pid}@${hostname()}`, isInFlight: () => false } })
  await store2.close()
  const restarted = await runBatchInProcess(path, DAY)
  const identical = restarted.fingerprint.digest === clean.fingerprint.digest
  record({
    name: 'kill -9 mid-batch, then restart',
    tried: `SIGKILL of a child batching ${shape.events} events, ${delayMs} ms into run #${seen.id}, once its summary write had grown the WAL past ${WAL_GROWTH_BEFORE_KILL_BYTES / 1024 / 1024} MB; dead run marked abandoned by the service's start-up recovery (abandonStaleRuns: owner pid dead); rerun in-process`,
    held: after.status === 'running' && partial.n === 0 && abandoned.length === 1 && restarted.run.status === 'succeeded' && identical,
    detail: `killed run left ${after.status} with ${partial.n} rows of its own; ${abandoned.length} run(s) abandoned; rerun ${restarted.run.status}; ${restarted.fingerprint.rows} summary rows ${identical ? 'identical to' : 'DIFFERENT from'} a clean run`,
  })
}

// ── 2. NBP answering 500, garbage, or hanging ─────────────────────────────────────────────────
/** The service's own NBP client and rate provider against a fake NBP: 2 retries, 1 s per attempt. */
function productNbpRates(baseUrl: string): (store: SqliteStore) => RateProvider {
  return (store) =>
    createRateProvider({
      store,
      nbp: createNbpClient({ baseUrl, timeoutMs: 1_000, maxRetries: 2, baseDelayMs: 100 }),
      policy: 'previous-business-day',
      clock: systemClock,
    })
}

async function nbpFailures(dir: string, shape: Shape) {
  const sockets = new Set<import('node:net').Socket>()
  let mode: 'error500' | 'garbage' | 'hang' = 'error500'
  const server: Server = createServer((req, res) => {
    if (mode === 'error500') res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error')
    else if (mode === 'garbage') res.writeHead(200, { 'content-type': 'application/json' }).end('<html>{"rates":[{"no"')
    // hang: never answer
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/api`
  const small = { ...shape, events: Math.min(shape.events, 20_000) }
  for (const m of ['error500', 'garbage', 'hang'] as const) {
    mode = m
    const path = join(dir, `nbp-${m}.db`)
    const db = openDb({ path })
    insertEventsDirect(db.$client, generateEvents(small, dayWindow(DAY, TIME_ZONE), 'day'), 50_000, NOW_MS)
    db.$client.close()
    const started = Date.now()
    const { run } = await runBatchInProcess(path, DAY, productNbpRates(base))
    const check = openDb({ path })
    const r = check.$client
      .prepare('SELECT count(*) AS rows, sum(markup_cost_nano_usd IS NOT NULL AND markup_cost_nano_usd > 0) AS usd, sum(markup_cost_nano_pln IS NULL) AS plnNull FROM client_daily_usage WHERE usage_date = ?')
      .get(DAY) as { rows: number; usd: number; plnNull: number }
    check.$client.close()
    const warnings = JSON.parse(run.warnings) as string[]
    record({
      name: `NBP answering ${m === 'error500' ? '500' : m}`,
      tried: `batch of ${small.events} events with the service's NBP client and rate provider (3 attempts, 1 s each) against a local fake NBP that ${m === 'error500' ? 'answers 500' : m === 'garbage' ? 'answers 200 with a truncated HTML/JSON body' : 'accepts and never answers'}`,
      held: run.status === 'succeeded_with_warnings' && r.rows > 0 && r.usd === r.rows && r.plnNull === r.rows && warnings.length > 0,
      detail: `run ${run.status} in ${Date.now() - started} ms; ${r.rows} client rows, ${r.usd} with USD, ${r.plnNull} with PLN null; warning: ${warnings[0] ?? 'none'}`,
    })
  }
  for (const s of sockets) s.destroy()
  await new Promise((r) => server.close(r))
}

// ── 3. 2,000 random malformed requests across every route ────────────────────────────────────
const ADMIN = 'chaos-admin-token-3e8f1b'

async function startApp(path: string, env: Record<string, string> = {}): Promise<{ app: App; db: Db; port: number; close: () => Promise<void> }> {
  const config = loadConfig({ SQLITE_PATH: path, LOG_LEVEL: 'silent', BATCH_SCHEDULER_ENABLED: 'false', ...env })
  const services = await createServices(config, { log: silent, clock: fixedClock(NOW_MS), rates: fixedRate })
  const app = await buildApp(config, services)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    app,
    db: (services.store as SqliteStore).db,
    port: (app.server.address() as { port: number }).port,
    close: async () => {
      await services.stop(0)
      await app.close()
      await services.close()
    },
  }
}

function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A fresh connection per request: a server closing after a refused body must not fail the next request.
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

function malformedRequest(random: () => number): { method: string; path: string; headers: Record<string, string>; body?: string } {
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!
  const junk = () => pick(['', ' ', '%00', '%ZZ', '../../etc/passwd', '2026-13-45', '2026-02-30', '-1', '1e309', 'NaN', '"', "'; DROP TABLE usage_events;--", 'ł'.repeat(300), 'x'.repeat(5000), '{}', '[]', 'null'])
  const jsonJunk = () =>
    pick([
      '{',
      '{"events": ',
      'null',
      '[]',
      '"text"',
      '{"events": []}',
      '{"events": [{}]}',
      `{"events": [{"request_id":"r","client_org_id":"c","model":"m","input_tokens":-1,"output_tokens":1,"cost_usd":"0.1","timestamp":"2026-11-20T10:00:00Z"}]}`,
      `{"events": [{"request_id":"r","client_org_id":"c","model":"m","input_tokens":1,"output_tokens":1,"cost_usd":"1e400","timestamp":"2026-11-20T10:00:00Z"}]}`,
      `{"events": [{"request_id":"r","client_org_id":"c","model":"m","input_tokens":1,"output_tokens":1,"cost_usd":"0.1","timestamp":"2026-11-20T10:00:00"}]}`,
      `{"events": [{"request_id":"r","client_org_id":"c","model":"m","input_tokens":1.5,"output_tokens":1,"cost_usd":0.1,"timestamp":"2026-11-20T10:00:00Z"}]}`,
      `{"events": [{"request_id":"","client_org_id":"c","model":"m","input_tokens":1,"output_tokens":1,"cost_usd":0.1,"timestamp":"2026-11-20T10:00:00Z"}]}`,
      '{"date": "2026-11-31"}',
      '{"date": "2099-01-01"}',
      '{"from": "2026-11-20", "to": "2020-01-01"}',
      '{"from": "2000-01-01", "to": "2026-11-20"}',
      '{"date": 20261120}',
      '{"date": "2026-11-20", "extra": true}',
      '{"__proto__": {"x": 1}, "date": "x"}',
      '\u0000\u0001\u0002',
    ])
  const token = random() < 0.15 ? pick(['', 'Bearer wrong', 'Basic abc', 'Bearer', `Bearer ${ADMIN} extra`]) : `Bearer ${ADMIN}`
  const headers: Record<string, string> = token ? { authorization: token } : {}
  const kind = Math.floor(random() * 9)
  switch (kind) {
    case 0: // ingest: bad JSON, wrong schema, wrong content type
      return { method: 'POST', path: '/usage/events', headers: { ...headers, 'content-type': pick(['application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded']) }, body: jsonJunk() }
    case 1:
      return { method: 'POST', path: `/batch/run${pick(['', '?wait=maybe', '?wait=true&x=1'])}`, headers: { ...headers, 'content-type': 'application/json' }, body: jsonJunk() }
    case 2:
      return { method: 'GET', path: `/batch/runs?${pick(['from', 'to', 'status', 'cursor', 'limit'])}=${encodeURIComponent(junk())}`, headers }
    case 3:
      return { method: 'GET', path: `/batch/runs/${encodeURIComponent(pick(['abc', '-1', '0', '99999999999999999999', '1.5', junk()]))}`, headers }
    case 4:
      return { method: 'GET', path: `/usage/clients/${encodeURIComponent(pick(['', 'x'.repeat(300), 'c']))}/daily?from=${encodeURIComponent(junk())}&to=${encodeURIComponent(junk())}`, headers }
    case 5:
      return { method: 'GET', path: `/usage/clients/c/daily?from=2020-01-01&to=2026-11-20&unknown=1`, headers }
    case 6: // wrong methods on every route
      return { method: pick(['DELETE', 'PATCH', 'PUT']), path: pick(['/health', '/health/live', '/health/ready', '/batch/run', '/batch/runs', '/batch/runs/1', '/batch/status', '/usage/events', '/usage/clients/c/daily']), headers, body: jsonJunk() }
    case 7: // GET routes without input, reached with a body they must refuse or a method they lack
      return { method: 'POST', path: pick(['/health', '/health/live', '/health/ready', '/batch/status', '/batch/runs']), headers: { ...headers, 'content-type': 'application/json' }, body: jsonJunk() }
    default: // oversized body
      return { method: 'POST', path: '/usage/events', headers: { ...headers, 'content-type': 'application/json' }, body: `{"events": [${'{"request_id":"r"},'.repeat(600_000)}{}]}` }
  }
}

async function malformedRequests(dir: string) {
  const path = join(dir, 'malformed.db')
  const seedDb = openDb({ path })
  insertEventsDirect(seedDb.$client, generateEvents({ events: 2_000, clients: 5, users: 3, models: 3, seed: 7 }, dayWindow(DAY, TIME_ZONE), 'day'), 5_000, NOW_MS)
  seedDb.$client.close()
  await runBatchInProcess(path, DAY)
  const server = await startApp(path, { API_ADMIN_TOKEN: ADMIN })
  const before = databaseDigest(server.db)
  const random = (() => {
    let a = 20261128
    return () => {
      a = (a + 0x6d2b79f5) >>> 0
      let t = Math.imul(a ^ (a >>> 15), a | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
  })()
  const byStatus = new Map<number, number>()
  const offenders: string[] = []
  let transportErrors = 0
  const total = 2_000
  for (let i = 0; i < total; i++) {
    const r = malformedRequest(random)
    try {
      const res = await rawRequest(server.port, r.method, r.path, r.headers, r.body)
      byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1)
      const leaked = /\bat .+\(.+:\d+:\d+\)|node_modules/.test(res.body)
      if (res.status < 400 || res.status >= 500 || leaked) {
        if (offenders.length < 5) offenders.push(`${r.method} ${r.path.slice(0, 80)} → ${res.status}${leaked ? ' (stack trace in body)' : ''}: ${res.body.slice(0, 120)}`)
      }
    } catch (error) {
      // A refused oversized body may be cut off by the server before it is fully sent: that is a refusal too.
      transportErrors += 1
      if (!/EPIPE|ECONNRESET/.test((error as Error).message) && offenders.length < 5) offenders.push(`${r.method} ${r.path.slice(0, 80)} → ${(error as Error).message}`)
    }
  }
  const after = databaseDigest(server.db)
  await server.close()
  const non4xx = [...byStatus.entries()].filter(([s]) => s < 400 || s >= 500).reduce((n, [, c]) => n + c, 0)
  record({
    name: '2,000 random malformed requests across every route',
    tried: `${total} requests over HTTP (bad JSON, schema violations, impossible dates, oversized bodies, wrong methods and content types, bad tokens), seeded PRNG`,
    held: non4xx === 0 && before === after && offenders.length === 0,
    detail: `statuses ${[...byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, c]) => `${s}×${c}`).join(' ')}; connection resets on oversized bodies ${transportErrors}; database checksum ${before === after ? 'unchanged' : 'CHANGED'}${offenders.length ? `; e.g. ${offenders.join(' | ')}` : ''}`,
  })
}

// ── 4. ingestion at full speed while batches run ──────────────────────────────────────────────
async function ingestWhileBatching(dir: string, seconds: number) {
  const path = join(dir, 'concurrent.db')
  const server = await startApp(path)
  const window = dayWindow(DAY, TIME_ZONE)
  const shape = { events: 10_000_000, clients: 50, users: 10, models: 10, seed: 99 }
  const events = generateEvents(shape, window, 'live')
  const stopAt = Date.now() + seconds * 1000
  let accepted = 0
  let duplicates = 0
  let posts = 0
  const runs: string[] = []
  const json = { 'content-type': 'application/json' }
  // One producer posts requests the event loop stores, the other requests the ingest writer's
  // thread stores (WRITER_MIN_RECORDS and up): both connections write while the batch replaces the day.
  const producer = async (perRequest: number) => {
    while (Date.now() < stopAt) {
      const batch: object[] = []
      for (let i = 0; i < perRequest; i++) batch.push(toRequestRecord(events.next().value!))
      const res = await rawRequest(server.port, 'POST', '/usage/events', json, JSON.stringify({ events: batch }))
      if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.body.slice(0, 200)}`)
      const body = JSON.parse(res.body) as { accepted: number; duplicates: number }
      accepted += body.accepted
      duplicates += body.duplicates
      posts += 1
    }
  }
  const batcher = async () => {
    while (Date.now() < stopAt) {
      const res = await rawRequest(server.port, 'POST', '/batch/run?wait=true', json, JSON.stringify({ date: DAY }))
      if (res.status !== 200 && res.status !== 202) throw new Error(`batch answered ${res.status}: ${res.body.slice(0, 200)}`)
      for (const run of (JSON.parse(res.body) as { runs: Array<{ status: string }> }).runs) runs.push(run.status)
    }
  }
  await Promise.all([producer(500), producer(2_000), batcher()])
  const final = await rawRequest(server.port, 'POST', '/batch/run?wait=true', json, JSON.stringify({ date: DAY }))
  const finalStatus = (JSON.parse(final.body) as { runs: Array<{ status: string }> }).runs[0]?.status
  const sums = SUMMARY_TABLES.map((t) => (server.db.$client.prepare(`SELECT coalesce(sum(total_requests), 0) AS n FROM ${t} WHERE usage_date = ?`).get(DAY) as { n: number }).n)
  const stored = (server.db.$client.prepare('SELECT count(*) AS n FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?').get(window.startMs, window.endMs) as { n: number }).n
  await server.close()
  const failedRuns = runs.filter((s) => s !== 'succeeded' && s !== 'succeeded_with_warnings').length
  record({
    name: 'ingestion at full speed while batches run',
    tried: `${seconds} s of two producers posting 500 and 2,000 events per request (the second stored by the ingest writer's thread) for ${DAY} while the same date is batched over and over through POST /batch/run?wait=true, then one final rerun`,
    held: sums.every((s) => s === accepted) && stored === accepted && finalStatus === 'succeeded' && failedRuns === 0,
    detail: `${posts} posts, ${accepted} accepted (${duplicates} duplicates), ${runs.length} batch runs during ingestion (${failedRuns} not succeeded), final run ${finalStatus}; total_requests over the day: client ${sums[0]}, user×model ${sums[1]}, model ${sums[2]}; raw rows stored ${stored}`,
  })
}

// ── 5. InfluxDB stopped mid-run ───────────────────────────────────────────────────────────────
async function influxStoppedMidRun() {
  if (!influxdPath()) {
    say('skipped: InfluxDB stopped mid-run needs influxd (apt-get install -y influxdb); not counted as held')
    return
  }
  const { factory } = await loadInfluxSourceFactory()
  const teardown: Array<() => unknown> = []
  try {
    // The test helper's influxd: it can be killed and started again on the same port and data.
    const influx = await startTestInfluxd({ teardown: (fn) => teardown.push(fn), comment: () => {} }, 'usage_chaos')
    const clock = fixedClock(Date.parse('2026-11-28T12:00:00Z'))
    const shape: Shape = { events: 100_000, clients: 50, users: 20, models: 20, seed: 20261121 }
    const lines = [...generateEvents(shape, dayWindow(DAY, 'Europe/Warsaw'), 'influx')].map((e) => toLineProtocol(e))
    await writeLines(influx.url, influx.database, lines)
    const store = openSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'usage-chaos-influx-')), 'usage.db') })
    const { db } = store
    const source = factory!({ url: influx.url, database: influx.database, measurement: 'usage_tracking', clock, timeZone: 'Europe/Warsaw' })
    const batch = createBatchService({ store, source, rates: fixedRate, clock, log: silent, timeZone: 'Europe/Warsaw', defaultMarkupRate: '1.3', perClientConcurrency: 5 })
    const first = await batch.runDate(DAY, 'cli')
    const before = summaryFingerprint(db, DAY)
    // Kill influxd while the second run is querying client by client.
    const started = (await batch.startMany([DAY], 'cli'))[0]!
    await new Promise((resolve) => setTimeout(resolve, 300))
    const killedWhileRunning = getRunStatus(db, started.run.id) === 'running'
    await influx.stop()
    const failed = await started.done
    const intact = summaryFingerprint(db, DAY).digest === before.digest
    await influx.restart()
    const recovered = await batch.runDate(DAY, 'cli')
    const same = summaryFingerprint(db, DAY).digest === before.digest
    record({
      name: 'InfluxDB stopped mid-run',
      tried: `${shape.events} points in a real influxd, a successful run, then influxd killed ${killedWhileRunning ? 'while' : 'around when'} the next run queried client by client, then restarted`,
      held: first.status === 'succeeded' && killedWhileRunning && failed.status === 'failed' && intact && recovered.status === 'succeeded' && same,
      detail: `first ${first.status} (${before.rows} rows); during the outage ${failed.status}: ${(failed.error_message ?? '').slice(0, 120)}; previous rows ${intact ? 'intact' : 'CHANGED'}; after restart ${recovered.status}, rows ${same ? 'identical' : 'DIFFERENT'}`,
    })
    await source.close()
    db.$client.close()
  } finally {
    for (const fn of teardown.reverse()) await fn()
  }
}

// ── 6 and 7. PostgreSQL mode: replicas as real processes on one PostgreSQL ──────────────────────
/** The PostgreSQL scenarios' shared pieces: a throwaway server, a fake NBP, and what to tear down. */
async function postgresStage(name: string): Promise<{ server: PostgresServer; nbpUrl: string; hang: () => void; teardown: Array<() => unknown>; dataDir: string } | undefined> {
  try {
    if (postgresUnavailable()) {
      say(`skipped: ${name} needs PostgreSQL 15 (apt-get install -y postgresql); not counted as held`)
      return undefined
    }
  } catch (e) {
    record({ name, tried: 'start PostgreSQL', held: false, detail: (e as Error).message })
    return undefined
  }
  const teardown: Array<() => unknown> = []
  const server = await launchPostgres()
  teardown.push(() => server.destroy())
  const nbp = await startFakeNbp()
  teardown.push(() => nbp.close())
  const dataDir = mkdtempSync(join(tmpdir(), 'usage-chaos-pg-'))
  teardown.push(() => rmSync(dataDir, { recursive: true, force: true }))
  return { server, nbpUrl: nbp.baseUrl, hang: () => nbp.queue('hang'), teardown, dataDir }
}

function replicaEnv(url: string, nbpUrl: string, dataDir: string): Record<string, string> {
  return {
    DATABASE_URL: url,
    SQLITE_PATH: join(dataDir, 'usage.db'),
    NBP_API_URL: nbpUrl,
    NBP_MAX_RETRIES: '0',
    NBP_TIMEOUT_MS: '120000',
    // info: the replica's "Server listening at" line says its port.
    LOG_LEVEL: 'info',
    // No tick during the scenario and no catch-up: only the runs it asks for.
    BATCH_SCHEDULE_CRON: '0 0 29 2 *',
    BATCH_CATCHUP_DAYS: '0',
  }
}

/** The summaries of a date without volatile columns, digested by PostgreSQL: equal digest ⇔ equal figures. */
async function pgFingerprint(url: string, date: string): Promise<{ digest: string; rows: number }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const parts: string[] = []
    let rows = 0
    for (const table of SUMMARY_TABLES) {
      const r = await client.query<{ d: string | null; n: string }>(
        `SELECT md5(string_agg(x, E'\n' ORDER BY x)) AS d, count(*) AS n
           FROM (SELECT (to_jsonb(t) - 'id' - 'batch_run_id' - 'created_at' - 'updated_at')::text AS x FROM ${table} t WHERE usage_date = $1) s`,
        [date],
      )
      parts.push(`${table}:${r.rows[0]!.d}`)
      rows += Number(r.rows[0]!.n)
    }
    return { digest: parts.join(','), rows }
  } finally {
    await client.end()
  }
}

async function pgQuery(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(text, params)
  } finally {
    await client.end()
  }
}

interface ApiRun {
  id: number
  status: string
  duration_ms: number | null
  error_message: string | null
}

async function postgresRestartedMidRun(events: number) {
  const name = 'PostgreSQL restarted mid-run'
  const stage = await postgresStage(name)
  if (!stage) return
  const { server, teardown } = stage
  const started: Replica[] = []
  try {
    const url = server.url
    const tap = { teardown: (fn: () => unknown) => void teardown.push(fn) }
    const timings = { heartbeatMs: 500, staleAfterMs: 4_000, recoveryIntervalMs: 1_000 }
    const env = replicaEnv(url, stage.nbpUrl, stage.dataDir)
    started.push(...(await Promise.all(['chaos-a', 'chaos-b'].map((host) => startReplica(tap, { host, env, timings })))))
    const [a, b] = started
    // A large day written straight into usage_events (ingestion is not what this scenario tries).
    const window = dayWindow(DAY, TIME_ZONE)
    await pgQuery(
      url,
      `INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens, cost_nano_usd, occurred_at, received_at)
       SELECT 'chaos-' || i, 'client-' || (i % 500), 'model-' || (i % 20), 'user-' || (i % 20), 10, 5, 15, 1000 + i, $1::bigint + (i % 86000000), $1::bigint
         FROM generate_series(1, $2::int) AS i`,
      [window.startMs, events],
    )
    const first = (await a!.post<{ runs: ApiRun[] }>('/batch/run?wait=true', { date: DAY })).body.runs[0]!
    const before = await pgFingerprint(url, DAY)
    // The next run of the day on A; PostgreSQL stopped (fast shutdown: sessions cut) part-way in.
    const second = (await a!.post<{ runs: ApiRun[] }>('/batch/run', { date: DAY })).body.runs[0]!
    await new Promise((resolve) => setTimeout(resolve, Math.max(100, Math.round((first.duration_ms ?? 1_000) * 0.4))))
    const stillRunning = (await b!.get<ApiRun>(`/batch/runs/${second.id}`)).body.status === 'running'
    const stoppedAt = Date.now()
    await server.stop()
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    await server.start()
    const restartMs = Date.now() - stoppedAt
    const closed = await until('the interrupted run to close', 60_000, async () => {
      const r = await b!.get<ApiRun>(`/batch/runs/${second.id}`).catch(() => undefined)
      return r && r.status === 200 && r.body.status !== 'running' ? r.body : undefined
    })
    const intact = (await pgFingerprint(url, DAY)).digest === before.digest
    const ready = await Promise.all([a!, b!].map(async (r) => (await r.get('/health/ready')).status))
    const rerun = (await b!.post<{ runs: ApiRun[] }>('/batch/run?wait=true', { date: DAY })).body.runs[0]!
    const same = (await pgFingerprint(url, DAY)).digest === before.digest
    record({
      name,
      tried: `${events} raw rows in PostgreSQL, two replicas; a successful run, then PostgreSQL stopped (fast shutdown) ${stillRunning ? 'while' : 'around when'} the next run of the day worked, started again ${restartMs} ms later`,
      held: first.status !== 'failed' && stillRunning && intact && ready.every((s) => s === 200) && rerun.status !== 'failed' && same,
      detail: `first ${first.status} (${before.rows} rows, ${first.duration_ms} ms); the cut run closed as ${closed.status}: ${(closed.error_message ?? '').slice(0, 100)}; previous rows ${intact ? 'intact' : 'CHANGED'}; readiness after the restart ${ready.join('/')}; rerun ${rerun.status}, rows ${same ? 'identical' : 'DIFFERENT'}`,
    })
  } catch (e) {
    record({ name, tried: 'see the log', held: false, detail: `the scenario failed: ${(e as Error).message}` })
    for (const r of started) say(`${r.host} (exit ${r.process.exitCode ?? r.process.signalCode ?? 'none'}) logged, last lines:\n${r.output().trimEnd().split('\n').slice(-8).join('\n')}`)
  } finally {
    for (const fn of teardown.reverse()) await fn()
  }
}

async function leaderKilled() {
  const name = 'leader killed'
  const stage = await postgresStage(name)
  if (!stage) return
  const { server, teardown } = stage
  const started: Replica[] = []
  try {
    const url = server.url
    const tap = { teardown: (fn: () => unknown) => void teardown.push(fn) }
    const env = replicaEnv(url, stage.nbpUrl, stage.dataDir)
    // Production timings throughout: leader attempts every 5 s, heartbeat 10 s, dead after 60 s, looked for every 20 s.
    const replicas = await Promise.all(['leader-a', 'leader-b', 'leader-c'].map((host) => startReplica(tap, { host, env })))
    started.push(...replicas)
    const alive = new Set<Replica>(replicas)
    const leaderAmong = async () => {
      const states = await Promise.all([...alive].map(async (r) => [r, await isLeader(r)] as const))
      const leaders = states.filter(([, l]) => l === true)
      return leaders.length === 1 && states.every(([, l]) => l !== undefined) ? leaders[0]![0] : undefined
    }
    const leader = await until('exactly one leader', 60_000, leaderAmong)
    // The leader works on a day (its NBP request hangs) when it dies.
    stage.hang()
    const run = (await leader.post<{ runs: ApiRun[] }>('/batch/run', { date: DAY })).body.runs[0]!
    const owner = (await pgQuery(url, 'SELECT owner FROM influxdb_batch_runs WHERE id = $1', [run.id])).rows[0]?.owner as string
    const killedAt = Date.now()
    await leader.kill9()
    alive.delete(leader)
    const next = await until('a new leader', 60_000, leaderAmong, 100)
    const failoverMs = Date.now() - killedAt
    const survivor = [...alive][0]!
    const abandoned = await until('the dead leader’s run abandoned', 180_000, async () => {
      const r = await survivor.get<ApiRun>(`/batch/runs/${run.id}`)
      return r.body.status === 'abandoned' ? r.body : undefined
    }, 500)
    const abandonMs = Date.now() - killedAt
    const rerun = (await next.post<{ runs: ApiRun[] }>('/batch/run?wait=true', { date: DAY })).body.runs[0]!
    const leaders = (await Promise.all([...alive].map(isLeader))).filter((l) => l === true).length
    record({
      name,
      tried: `three replicas with the production timings; kill -9 of the leader while it ran ${DAY} (run ${run.id} of ${owner.replace(/^\d+@/, '')})`,
      held: failoverMs < 30_000 && abandoned.status === 'abandoned' && abandonMs < 120_000 && rerun.status !== 'failed' && rerun.id !== run.id && leaders === 1,
      detail: `a new leader after ${failoverMs} ms (bound 30 s); the dead leader's run abandoned after ${abandonMs} ms (bound 120 s); rerun ${rerun.status} as run ${rerun.id}; leaders now ${leaders}`,
    })
  } catch (e) {
    record({ name, tried: 'see the log', held: false, detail: `the scenario failed: ${(e as Error).message}` })
    for (const r of started) say(`${r.host} (exit ${r.process.exitCode ?? r.process.signalCode ?? 'none'}) logged, last lines:\n${r.output().trimEnd().split('\n').slice(-8).join('\n')}`)
  } finally {
    for (const fn of teardown.reverse()) await fn()
  }
}

function getRunStatus(db: Db, id: number): string | undefined {
  return (db.$client.prepare('SELECT status FROM influxdb_batch_runs WHERE id = ?').get(id) as { status: string } | undefined)?.status
}

async function main() {
  const { values } = parseArgs({ options: { events: { type: 'string' }, seconds: { type: 'string' }, only: { type: 'string' }, 'pg-events': { type: 'string' } } })
  const shape: Shape = { events: Number(values.events ?? 400_000), clients: 500, users: 20, models: 20, seed: 20261120 }
  const seconds = Number(values.seconds ?? 20)
  const only = values.only?.split(',')
  const wants = (p: string) => !only || only.includes(p)
  const dir = mkdtempSync(join(tmpdir(), 'usage-chaos-'))
  const started = Date.now()
  // The whole suite is bounded: if a scenario hangs, the process ends with what it has.
  const guard = setTimeout(() => {
    say('time budget (15 min) exceeded; stopping')
    report()
    process.exit(1)
  }, 15 * 60_000)
  try {
    if (wants('kill')) await killMidBatch(dir, shape)
    if (wants('nbp')) await nbpFailures(dir, shape)
    if (wants('malformed')) await malformedRequests(dir)
    if (wants('concurrent')) await ingestWhileBatching(dir, seconds)
    if (wants('influx')) await influxStoppedMidRun()
    if (wants('postgres-restart')) await postgresRestartedMidRun(Number(values['pg-events'] ?? 400_000))
    if (wants('leader')) await leaderKilled()
  } finally {
    clearTimeout(guard)
    rmSync(dir, { recursive: true, force: true })
  }
  say(`done in ${Math.round((Date.now() - started) / 1000)} s`)
  report()
  process.exit(checks.every((c) => c.held) ? 0 : 1)
}

function report() {
  process.stdout.write('\n| scenario | tried | held | detail |\n|---|---|---|---|\n')
  for (const c of checks) process.stdout.write(`| ${c.name} | ${c.tried} | ${c.held ? (c.detail.startsWith('skipped') ? 'skipped' : 'yes') : '**no**'} | ${c.detail} |\n`)
}

if (process.argv[2] === 'child-batch') {
  // The victim of scenario 1: a plain CLI-like batch of one date, in its own process.
  const [, , , path, date] = process.argv
  const { run } = await runBatchInProcess(path!, date!)
  process.stdout.write(`${run.status}\n`)
  process.exit(0)
} else {
  await main()
}
