// InfluxDB-first mode cannot void: POST /usage/events/void answers 409 with the exact deletes, which
// remove exactly those points when run (InfluxQL on a real influxd 1.6.7; Flux predicates checked
// against the InfluxDB 2 stand-in). Stored duplicates cannot be told from conflicts there, but
// conflicts inside one request are still refused.
import t from 'tap'
import { deletePredicate } from '../../src/sources/flux.js'
import { eventTimestampNs } from '../../src/sources/line-protocol.js'
import { buildTestApp, databaseDigest } from '../helper.js'
import { influxdUnavailable, startInfluxd } from '../helpers/influxd.js'
import { rfc3339Nano, startFakeInflux2 } from '../helpers/fake-influx2.js'

const DAY = '2026-11-20'
const TRICKY = 'o\'hara "q" a\\b, c=d'
const skip = influxdUnavailable()

const events = [
  { request_id: 'keep-1', client_org_id: 'acme', model: 'm1', external_user: 'alice', input_tokens: 1, output_tokens: 1, cost_usd: '0.1', timestamp: `${DAY}T10:00:00Z` },
  { request_id: "wrong 'one'", client_org_id: TRICKY, model: 'm\\2', external_user: 'bob "b"', input_tokens: 5, output_tokens: 5, cost_usd: '9', timestamp: `${DAY}T10:00:00.250Z` },
  // Same tags and millisecond as the one above: only the sub-millisecond offset tells them apart.
  { request_id: 'keep-2', client_org_id: TRICKY, model: 'm\\2', external_user: 'bob "b"', input_tokens: 2, output_tokens: 2, cost_usd: '0.2', timestamp: `${DAY}T10:00:00.250Z` },
]

t.test('InfluxQL: 409 with DELETE statements that remove exactly the voided points', { skip }, async (t) => {
  const influx = await startInfluxd(t)
  // The production wiring: the InfluxDB source detected from /ping, behind its query metrics.
  const { app, db } = await buildTestApp(t, {
    env: { INFLUXDB_URL: influx.url, INFLUXDB_DATABASE: influx.database, INFLUXDB_TIMEOUT_MS: '5000' },
  })
  t.equal((await app.inject({ method: 'POST', url: '/usage/events', payload: { events } })).statusCode, 200)
  // A point of the earlier system: no external_user tag, request_id as a field, ms timestamp.
  await influx.write(influx.database, `usage_tracking,client_org_id=legacy,model=m1 input_tokens=3i,output_tokens=3i,total_tokens=6i,cost_usd=0.3,request_id="legacy-1" ${Date.parse(`${DAY}T11:00:00Z`)}`)
  const points = async () => {
    const r = await fetch(`${influx.url}/query?db=${influx.database}&q=${encodeURIComponent('SELECT "request_id" FROM "usage_tracking"')}`)
    const body = (await r.json()) as { results: Array<{ series?: Array<{ values: Array<[string, string]> }> }> }
    return (body.results[0]?.series?.[0]?.values ?? []).map((v) => v[1]).sort()
  }
  t.same(await points(), ['keep-1', 'keep-2', 'legacy-1', "wrong 'one'"])
  const first = (await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: DAY } })).json().runs[0]
  t.match(first, { records_processed: 4 })

  const digest = databaseDigest(db)
  const res = await app.inject({ method: 'POST', url: '/usage/events/void', payload: { request_ids: ["wrong 'one'", 'legacy-1', 'nope'], reason: 'test traffic' } })
  t.equal(res.statusCode, 409, res.body)
  const body = res.json()
  t.match(body, { statusCode: 409, error: 'Conflict', dialect: 'influxql', not_found: ['nope'] })
  t.equal(body.deletes.length, 2)
  const wrongNs = eventTimestampNs({ request_id: "wrong 'one'", occurred_at_ms: Date.parse(events[1]!.timestamp) })
  t.same(
    body.deletes.find((d: { request_id: string }) => d.request_id === "wrong 'one'"),
    {
      request_id: "wrong 'one'",
      time: rfc3339Nano(wrongNs),
      statement: `DELETE FROM "usage_tracking" WHERE "client_org_id" = 'o\\'hara "q" a\\\\b, c=d' AND "external_user" = 'bob "b"' AND "model" = 'm\\\\2' AND time = '${rfc3339Nano(wrongNs)}'`,
    },
    'the point is named by its tags and its timestamp (event time + the offset derived from request_id), literals escaped',
  )
  t.equal(databaseDigest(db), digest, 'the service changed nothing')

  for (const d of body.deletes as Array<{ statement: string }>) {
    const r = await fetch(`${influx.url}/query?db=${influx.database}`, { method: 'POST', body: new URLSearchParams({ q: d.statement }) })
    const text = await r.text()
    t.ok(r.ok && !text.includes('"error"'), `${d.statement} → ${text}`)
  }
  t.same(await points(), ['keep-1', 'keep-2'], 'exactly the voided points are gone, the neighbour in the same millisecond kept')
  const rerun = (await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: DAY } })).json().runs[0]
  t.match(rerun, { records_processed: 2 })
  t.ok(rerun.data_corrections > 0)
  t.same((await app.inject({ url: `/usage/events/voided?from=${DAY}&to=${DAY}` })).json().voids, [], 'the service keeps no voids here')

  // A stored duplicate cannot be told from a conflict in InfluxDB (documented), but one request
  // carrying two contents for one request_id is still refused.
  const conflicting = await app.inject({
    method: 'POST',
    url: '/usage/events',
    payload: { events: [{ ...events[0], request_id: 'twice' }, { ...events[0], request_id: 'twice', cost_usd: '5' }] },
  })
  t.equal(conflicting.statusCode, 409)
  t.same(await points(), ['keep-1', 'keep-2'], 'nothing written')
})

t.test('Flux dialect: 409 with delete predicates (start = stop = the point), escaped', async (t) => {
  const fake = await startFakeInflux2(t)
  const { app } = await buildTestApp(t, {
    env: {
      INFLUXDB_URL: fake.url,
      INFLUXDB_TOKEN: fake.token,
      INFLUXDB_ORG: fake.org,
      INFLUXDB_BUCKET: fake.bucket,
      INFLUXDB_QUERY_LANGUAGE: 'flux',
      INFLUXDB_TIMEOUT_MS: '5000',
    },
  })
  t.equal((await app.inject({ method: 'POST', url: '/usage/events', payload: { events } })).statusCode, 200)
  const res = await app.inject({ method: 'POST', url: '/usage/events/void', payload: { request_ids: ["wrong 'one'", 'nope'], reason: 'r' } })
  t.equal(res.statusCode, 409, res.body)
  t.same(fake.invalidQueries, [], 'the lookup is valid Flux')
  const time = rfc3339Nano(eventTimestampNs({ request_id: "wrong 'one'", occurred_at_ms: Date.parse(events[1]!.timestamp) }))
  t.same(res.json().deletes, [
    {
      request_id: "wrong 'one'",
      time,
      predicate: '_measurement="usage_tracking" AND "client_org_id"="o\'hara \\"q\\" a\\\\b, c=d" AND "external_user"="bob \\"b\\"" AND "model"="m\\\\2"',
      start: time,
      stop: time,
    },
  ])
  t.same(res.json().not_found, ['nope'])
  t.equal(deletePredicate('m', { client_org_id: 'a', external_user: null, model: 'x' }), '_measurement="m" AND "client_org_id"="a" AND "model"="x"', 'a missing tag is left out')
})
