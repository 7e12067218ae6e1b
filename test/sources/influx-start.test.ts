// INFLUXDB_QUERY_LANGUAGE=auto with InfluxDB down at start: the service comes up and serves its
// reads, refuses what needs InfluxDB with a clear reason, detects the dialect in the background once
// a real influxd (1.6.7) appears after it, logging the outage once rather than once per attempt.
import t from 'tap'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../src/app.js'
import { fixedClock } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { createServices } from '../../src/services.js'
import { DEFAULT_NOW_MS } from '../helper.js'
import { influxdUnavailable, startInfluxd } from '../helpers/influxd.js'
import { LOOPBACK_ONLY_ENV, waitFor } from '../support/children.js'

const DAY = '2026-11-27'
const NOT_KNOWN = /InfluxDB query dialect not known yet \(INFLUXDB_QUERY_LANGUAGE=auto; its \/ping has not answered\); detection retries in the background, see GET \/health/

t.test('the service starts while InfluxDB is down, then detects it once it appears', { skip: influxdUnavailable() ?? false }, async (t) => {
  const influx = await startInfluxd(t)
  // Its database exists; now it goes away before the service starts.
  await influx.stop()

  const chunks: string[] = []
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk, _encoding, callback) {
        chunks.push(String(chunk))
        callback()
      },
    }),
  })
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown })
  const config = loadConfig({
    ...LOOPBACK_ONLY_ENV,
    SQLITE_PATH: join(t.testdir({}), 'usage.db'),
    INFLUXDB_URL: influx.url,
    INFLUXDB_DATABASE: influx.database,
    INFLUXDB_TIMEOUT_MS: '5000',
    BATCH_SCHEDULER_ENABLED: 'false',
  })
  t.equal(config.INFLUXDB_QUERY_LANGUAGE, 'auto', 'the default')
  const clock = fixedClock(DEFAULT_NOW_MS)
  const services = await createServices(config, { log, clock, influxRetry: { initialMs: 25, maxMs: 100 } })
  const app = await buildApp(config, services)
  t.teardown(async () => {
    await services.stop(1_000)
    await app.close()
    await services.close()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const get = (path: string) => fetch(`${base}${path}`)
  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  // /health reuses an InfluxDB check for 5 s of the (fixed) clock: step past it before each look.
  const health = async () => {
    clock.advance(6_000)
    return (await (await get('/health')).json()) as { status: string; services: { influxdb: { status: string; detail: Record<string, unknown> } } }
  }

  // Up, ready and serving reads without InfluxDB.
  t.equal((await get('/health/live')).status, 200)
  t.equal((await get('/health/ready')).status, 200, 'ready: its reads do not need InfluxDB')
  const reads = await get('/usage/clients?from=2026-11-01&to=2026-11-30')
  t.equal(reads.status, 200)
  t.same(((await reads.json()) as { clients: unknown[] }).clients, [])
  const down = await health()
  t.equal(down.status, 'degraded')
  t.equal(down.services.influxdb.status, 'down')
  t.match(down.services.influxdb.detail, { query_language: null, error: /dialect not known yet/, detection: { state: 'detecting' } })
  t.match(await (await get('/metrics')).text(), /^usage_batch_influxdb_up 0$/m)

  // What needs InfluxDB fails, and says why.
  const event = {
    request_id: 'r-1',
    client_org_id: 'acme',
    model: 'm1',
    external_user: 'alice',
    input_tokens: 10,
    output_tokens: 5,
    cost_usd: '0.25',
    timestamp: `${DAY}T10:00:00+01:00`,
  }
  const refusedIngest = await post('/usage/events', { events: [event] })
  t.equal(refusedIngest.status, 503)
  const refusedBody = (await refusedIngest.json()) as { message: string }
  t.match(refusedBody, { statusCode: 503, error: 'Service Unavailable', message: NOT_KNOWN })
  t.notMatch(refusedBody.message, /did not answer|ECONNREFUSED|fetch failed/, 'what the fetch said stays out of the 503 body')
  const refusedToday = await get('/usage/clients/acme/today')
  t.equal(refusedToday.status, 503)
  t.match(await refusedToday.json(), { message: NOT_KNOWN })
  const failedRun = (await (await post('/batch/run?wait=true', { date: DAY })).json()) as { runs: Array<{ status: string; error_message: string }> }
  t.equal(failedRun.runs[0]!.status, 'failed')
  t.match(failedRun.runs[0]!.error_message, NOT_KNOWN)
  t.match(failedRun.runs[0]!.error_message, /\/ping did not answer/, 'the run ledger keeps why (the cause)')

  // Retries go on in the background (25 ms doubling to 100 ms here); the outage is logged once, not per attempt.
  let attempts = 0
  for (const deadline = Date.now() + 20_000; attempts < 4 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    attempts = ((await health()).services.influxdb.detail.detection as { attempts: number }).attempts
  }
  t.ok(attempts >= 4, `retried in the background (${attempts} attempts)`)
  const outageLines = lines().filter((l) => /InfluxDB does not answer/.test(l.msg))
  t.equal(outageLines.length, 1, 'one warning for the whole outage')
  t.equal(outageLines[0]!.level, 40)

  // InfluxDB appears after the service: detected without a restart.
  await influx.restart()
  await waitFor(
    'the dialect to be detected',
    () => (lines().some((l) => l.msg === 'InfluxDB query dialect chosen') ? true : undefined),
    20_000,
    25,
  )
  const up = await health()
  t.equal(up.status, 'healthy')
  t.match(up.services.influxdb.detail, { version: /^1\.6/, query_language: 'influxql' })
  t.match(await (await get('/metrics')).text(), /^usage_batch_influxdb_up 1$/m)
  t.equal(lines().filter((l) => l.msg === 'InfluxDB answers again; dialect detected').length, 1)
  t.equal(lines().filter((l) => l.msg === 'InfluxDB query dialect chosen').length, 1, 'the choice logged once')

  t.equal((await post('/usage/events', { events: [event] })).status, 200)
  const today = await get('/usage/clients/acme/today')
  t.equal(today.status, 200, 'today is served again')
  const run = (await (await post('/batch/run?wait=true', { date: DAY })).json()) as { runs: Array<{ status: string; records_processed: number }> }
  t.equal(run.runs[0]!.status, 'succeeded_with_warnings', 'PLN missing only: NBP is unreachable in tests')
  t.equal(run.runs[0]!.records_processed, 1)
})
