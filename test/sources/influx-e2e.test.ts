// InfluxDB-first end to end on a real influxd 1.6.7, through HTTP: ingest writes points, the batch
// aggregates client by client, InfluxDB going down fails the run (never "no usage") and leaves the
// previous summaries, /health says so (readiness stays: reads are served), and the next run after it is back succeeds.
import t from 'tap'
import { buildTestApp, expectNano, expectTimesRate, nanoText, summaryRows } from '../helpers/app.js'
import { influxdUnavailable, startInfluxd } from '../helpers/influxd.js'

const DAY = '2026-11-20'
const skip = influxdUnavailable()

t.test('InfluxDB-first through HTTP, including InfluxDB going away and coming back', { skip }, async (t) => {
  const influx = await startInfluxd(t)
  // The production wiring: the InfluxDB source with query metrics, per-client aggregation.
  const { app, db, clock, config, services } = await buildTestApp(t, {
    env: { INFLUXDB_URL: influx.url, INFLUXDB_DATABASE: influx.database, INFLUXDB_TIMEOUT_MS: '5000' },
  })
  t.equal(config.influxdbFirst, true, 'INFLUXDB_URL set → InfluxDB-first')
  const { source, metrics } = services
  await source.ready!()
  t.equal(source.dialect, 'influxql', '/ping says 1.6.7 → InfluxQL')

  const events = ['acme', 'globex', "o'hara \"quoted\" a\\b [.*]"].flatMap((client, c) =>
    ['0.000000150', '1.234567891', '0.3'].map((cost, i) => ({
      request_id: `req-${c}-${i}`,
      client_org_id: client,
      model: i === 2 ? 'openai/gpt-4o' : 'anthropic/claude-sonnet-4',
      external_user: i === 0 ? undefined : `user-${i}`,
      input_tokens: 100 + i,
      output_tokens: 10 * c,
      cost_usd: cost,
      timestamp: `${DAY}T0${i}:30:00+01:00`,
    })),
  )
  const ingest = await app.inject({ method: 'POST', url: '/usage/events', payload: { events } })
  t.equal(ingest.statusCode, 200, ingest.body)
  t.same(ingest.json(), { accepted: events.length, duplicates: 0 })
  // A retry of the first record overwrites its own point: still one record.
  t.equal((await app.inject({ method: 'POST', url: '/usage/events', payload: { events: [events[0]] } })).statusCode, 200)

  const first = (await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: DAY } })).json().runs[0]
  t.equal(first.status, 'succeeded_with_warnings', first.error_message ?? '')
  t.equal(first.data_source, 'influxdb_first')
  t.equal(first.records_processed, events.length)
  t.equal(first.clients_processed, 3)
  const raw = ['0.000000150', '1.234567891', '0.3'].map(expectNano).reduce((a, b) => a + b, 0n)
  for (const client of ['acme', 'globex', "o'hara \"quoted\" a\\b [.*]"]) {
    const day = (await app.inject({ url: `/usage/clients/${encodeURIComponent(client)}/daily?from=${DAY}&to=${DAY}` })).json().days[0]
    t.equal(day.raw_cost_usd, Number(nanoText(raw)), `${client}: exact raw sum`)
    t.equal(day.markup_cost_usd, Number(nanoText(expectTimesRate(raw, '1.3'))))
    t.equal(day.total_requests, 3)
    t.equal(day.unique_users, 3, 'the record without a user counts as `unknown`')
  }
  const before = summaryRows(db, 'client_daily_usage', DAY)
  // The client listing, then one query per client: four timed queries, none failed.
  t.match(await metrics.render(), /usage_batch_influxdb_query_duration_seconds_count\{outcome="ok"\} 4\b/)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
  t.equal((await app.inject({ url: '/health' })).json().services.influxdb.status, 'up')

  await influx.stop()
  const refused = await app.inject({
    method: 'POST',
    url: '/usage/events',
    payload: { events: [{ ...events[1], request_id: 'while-down' }] },
  })
  t.equal(refused.statusCode, 503, 'nothing acknowledged while InfluxDB is down')
  const failed = (await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: DAY } })).json().runs[0]
  t.equal(failed.status, 'failed')
  t.match(failed.error_message, /ECONNREFUSED/, 'the error is recorded with its cause, not "no usage"')
  t.same(summaryRows(db, 'client_daily_usage', DAY), before, 'previous summaries untouched')
  t.match(await metrics.render(), /usage_batch_influxdb_query_errors_total \d+/)
  t.notMatch(await metrics.render(), /usage_batch_influxdb_query_errors_total 0\b/, 'query errors counted')
  // Probes cache the InfluxDB check for 5 s (so they cannot hammer it): let that pass.
  clock.advance(6_000)
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 200, 'InfluxDB down never takes readiness down: summaries are still served')
  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 200)
  t.equal(health.json().status, 'degraded')
  t.equal(health.json().services.influxdb.status, 'down')

  await influx.restart()
  const again = (await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: DAY } })).json().runs[0]
  t.equal(again.status, 'succeeded_with_warnings', again.error_message ?? '')
  t.equal(again.data_corrections, 0, 'the same figures as before the outage')
  t.same(summaryRows(db, 'client_daily_usage', DAY), before)
  clock.advance(6_000)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
})
