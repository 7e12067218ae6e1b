// Logs of a real server run (services + app listening on loopback, as src/server.ts wires them),
// captured through a pino destination stream: JSON lines, secrets never written, request ids
// round-trip, one structured line per batch day.
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import type { SqliteStore } from '../../src/db/sqlite/store.js'
import { listenService } from '../helpers/app.js'

const SECRETS = {
  API_ADMIN_TOKEN: 'adm1n-s3cret-9f8e7d6c',
  API_READ_TOKEN: 'r3ad-s3cret-1a2b3c4d',
  API_INGEST_TOKEN: '1ngest-s3cret-5e6f7a8b',
  INFLUXDB_PASSWORD: 'infl0x-passw0rd-77c1d2',
  INFLUXDB_TOKEN: 'infl0x-t0ken-0e1d2c3b',
}
const CLIENT_TOKEN = 'cl1ent-acme-s3cret-4455'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

type Line = Record<string, unknown> & { msg?: string; reqId?: string }

async function serverRun(t: Test, level = 'trace') {
  const chunks: string[] = []
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk))
      callback()
    },
  })
  const log = createLogger({ level, destination })
  const config = loadConfig({
    ...SECRETS,
    API_CLIENT_TOKENS: `acme=${CLIENT_TOKEN}`,
    SQLITE_PATH: join(t.testdir({}), 'usage.db'),
    BATCH_SCHEDULER_ENABLED: 'false',
    LOG_LEVEL: level,
  })
  const { base, close, services } = await listenService(t, config, log)
  const lines = () => chunks.join('').split('\n').filter(Boolean)
  return { base, close, lines, parsed: () => lines().map((l) => JSON.parse(l) as Line), db: (services.store as SqliteStore).db }
}

t.test('a server run that used every secret never writes one; request ids round-trip; one line per batch day', async (t) => {
  const run = await serverRun(t)
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

  const ingest = await fetch(`${run.base}/usage/events`, {
    method: 'POST',
    headers: { ...bearer(SECRETS.API_INGEST_TOKEN), 'content-type': 'application/json', 'x-request-id': 'ingest-req-0001' },
    body: JSON.stringify({
      events: [1, 2, 3].map((n) => ({
        request_id: `r${n}`,
        client_org_id: 'acme',
        model: 'm1',
        external_user: 'alice',
        input_tokens: n,
        output_tokens: n,
        cost_usd: '0.01',
        timestamp: '2026-11-25T10:00:00+01:00',
      })),
    }),
  })
  t.equal(ingest.status, 200)
  t.equal(ingest.headers.get('x-request-id'), 'ingest-req-0001', 'a given request id is echoed')

  const batch = await fetch(`${run.base}/batch/run?wait=true`, {
    method: 'POST',
    headers: { ...bearer(SECRETS.API_ADMIN_TOKEN), 'content-type': 'application/json' },
    body: JSON.stringify({ from: '2026-11-25', to: '2026-11-26' }),
  })
  t.equal(batch.status, 200)
  const generated = batch.headers.get('x-request-id')
  t.match(generated, UUID, 'a request without one gets a generated id')
  const second = await fetch(`${run.base}/health/live`)
  t.match(second.headers.get('x-request-id'), UUID)
  t.not(second.headers.get('x-request-id'), generated, 'generated ids differ per request')

  t.equal((await fetch(`${run.base}/batch/runs`, { headers: bearer(SECRETS.API_READ_TOKEN) })).status, 200)
  t.equal((await fetch(`${run.base}/usage/clients/acme/daily?from=2026-11-25&to=2026-11-25`, { headers: bearer(CLIENT_TOKEN) })).status, 200)
  t.equal((await fetch(`${run.base}/batch/runs`, { headers: bearer(`${SECRETS.API_ADMIN_TOKEN}x`) })).status, 401)
  t.equal((await fetch(`${run.base}/health`)).status, 200)
  // The batch service reports to the app's metrics: one registry, built once by createServices.
  const metricsText = await (await fetch(`${run.base}/metrics`)).text()
  t.match(metricsText, /^usage_batch_runs_total\{status="succeeded_with_warnings",trigger="api"\} 2$/m)
  t.match(metricsText, /^usage_batch_records_processed_total 3$/m)
  await run.close()

  const raw = run.lines()
  t.ok(raw.length > 10, 'the run logged')
  for (const [name, value] of [...Object.entries(SECRETS), ['API_CLIENT_TOKENS', CLIENT_TOKEN]]) {
    t.notOk(raw.some((line) => line.includes(value!)), `${name} value never appears in the logs`)
  }
  const lines = run.parsed()
  t.ok(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'string' && l.service === 'usage-batch'), 'every line is pino JSON')

  const configuration = lines.find((l) => l.msg === 'configuration')?.config as Record<string, unknown> | undefined
  t.ok(configuration, 'the configuration is logged at start')
  t.equal(configuration?.API_ADMIN_TOKEN, '[redacted]')
  t.equal(configuration?.INFLUXDB_PASSWORD, '[redacted]')
  t.equal(configuration?.API_CLIENT_TOKENS, '[redacted]')
  t.equal(configuration?.BUSINESS_TIMEZONE, 'Europe/Warsaw', 'non-secret settings stay readable')

  t.ok(lines.some((l) => l.reqId === 'ingest-req-0001' && l.msg === 'incoming request'), 'the given id is the log reqId')
  t.ok(lines.some((l) => l.reqId === generated && l.msg === 'request completed'), 'the generated id is the log reqId')

  const days = lines.filter((l) => l.msg === 'batch day done')
  t.equal(days.length, 2, 'exactly one line per batch day')
  const byDay = new Map(days.map((l) => [l.day, l]))
  t.match(byDay.get('2026-11-25'), { trigger: 'api', status: 'succeeded_with_warnings', clients: 1, records: 3, summaries: 3, corrections: 0 })
  t.match(byDay.get('2026-11-26'), { trigger: 'api', status: 'succeeded_with_warnings', clients: 0, records: 0, summaries: 0, corrections: 0 })
  for (const line of days) {
    t.type(line.runId, 'number')
    t.type(line.durationMs, 'number')
    t.ok(Array.isArray(line.warnings), 'warnings say why PLN is missing')
  }
})

t.test('request ids: a sane given id is kept, an unusable one replaced', async (t) => {
  const { buildTestApp } = await import('../helpers/app.js')
  const { app } = await buildTestApp(t)
  const given = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'gw-2026.11.28:abc-123' } })
  t.equal(given.headers['x-request-id'], 'gw-2026.11.28:abc-123')
  for (const bad of ['x'.repeat(129), 'has space', 'new\\nline', '']) {
    const res = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': bad } })
    t.match(res.headers['x-request-id'], UUID, `${JSON.stringify(bad.slice(0, 20))} replaced by a UUID`)
  }
  const none = await app.inject({ method: 'GET', url: '/health/live' })
  t.match(none.headers['x-request-id'], UUID)
})

t.test('configForLog removes credentials embedded in a URL', async (t) => {
  const { configForLog } = await import('../../src/logger.js')
  const out = configForLog({ INFLUXDB_URL: 'http://admin:pa55word@influx.local:8086/', NBP_API_URL: 'https://api.nbp.pl/api', PORT: 8080 })
  t.equal(out.INFLUXDB_URL, 'http://[redacted]@influx.local:8086/')
  t.equal(out.NBP_API_URL, 'https://api.nbp.pl/api')
  t.equal(out.PORT, 8080)
  const database = configForLog({ DATABASE_URL: 'postgres://usage:s3cret-pw@db.internal:5432/usage?sslmode=require' })
  t.equal(database.DATABASE_URL, 'postgres://[redacted]@db.internal:5432/usage?sslmode=require', 'a PostgreSQL URL too')
})

t.test('probes and scrapes log at debug, never at info; a failing probe logs at warn', async (t) => {
  const probes = ['/health/live', '/health/ready', '/health', '/metrics']
  for (const level of ['info', 'debug'] as const) {
    const run = await serverRun(t, level)
    const ids: string[] = []
    for (let round = 0; round < 3; round++) {
      for (const path of probes) {
        const id = `probe-${level}-${round}-${path.replace(/\W/g, '')}`
        t.equal((await fetch(`${run.base}${path}`, { headers: { 'x-request-id': id } })).status, 200, `${path} answers`)
        ids.push(id)
      }
    }
    // An API request still logs its two lines at info.
    t.equal((await fetch(`${run.base}/batch/runs`, { headers: { authorization: `Bearer ${SECRETS.API_READ_TOKEN}`, 'x-request-id': `api-${level}` } })).status, 200)
    // The database loses its migration record: readiness fails, and that is worth a line at any level.
    run.db.$client.exec('DELETE FROM __drizzle_migrations')
    t.equal((await fetch(`${run.base}/health/ready`, { headers: { 'x-request-id': `failing-${level}` } })).status, 503)
    await run.close()

    const lines = run.parsed()
    const probeLines = lines.filter((l) => ids.includes(l.reqId!))
    if (level === 'info') {
      t.same(probeLines, [], 'at info, twelve probes and scrapes write nothing')
    } else {
      t.equal(probeLines.length, ids.length * 2, 'at debug, each writes its incoming and completed lines')
      t.ok(probeLines.every((l) => l.level === 20), 'all at debug (20)')
    }
    const api = lines.filter((l) => l.reqId === `api-${level}`)
    t.same(api.map((l) => [l.level, l.msg]), [[30, 'incoming request'], [30, 'request completed']], 'API requests stay at info')
    const failing = lines.filter((l) => l.reqId === `failing-${level}` && (l.level as number) >= 30)
    t.equal(failing.length, 1, 'the failing probe: one line at warn')
    t.match(failing[0], { level: 40, msg: 'request completed', res: { statusCode: 503 } })
  }
})
