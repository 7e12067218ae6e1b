// The Flux source against a local fake of InfluxDB 2 that checks every query with InfluxData's
// Flux checker and answers annotated CSV.
import t from 'tap'
import { dayWindow } from '../../src/clock.js'
import { aggregateQuery, createFluxSource } from '../../src/sources/flux.js'
import { RawStoreUnavailableError } from '../../src/errors.js'
import { InfluxQueryError, detectInfluxVersion } from '../../src/sources/influx-http.js'
import { isValidFlux } from '../helpers/flux-check.js'
import { startFakeInflux2, type FakeInflux2 } from '../helpers/fake-influx2.js'
import { legacyLines } from '../helpers/legacy-points.js'
import { DAY_FOR_TESTS, HOSTILE_CLIENT, INJECTION_CLIENT, TZ, collect, runSourceContract } from '../helpers/source-contract.js'

const MEASUREMENT = 'usage_tracking'
const caught = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  )
const fakes: FakeInflux2[] = []

async function fakeServer(t: Parameters<typeof startFakeInflux2>[0]): Promise<FakeInflux2> {
  const fake = await startFakeInflux2(t)
  fakes.push(fake)
  return fake
}

function sourceFor(fake: FakeInflux2, bucket = fake.bucket) {
  return createFluxSource({ url: fake.url, token: fake.token, org: fake.org, bucket, measurement: MEASUREMENT, timeoutMs: 5_000 })
}

t.test('the checker accepts valid Flux and refuses broken Flux', async (t) => {
  t.equal(await isValidFlux('from(bucket: "b") |> range(start: -1h) |> sum()'), true)
  t.equal(await isValidFlux('from(bucket: "b") |> range(start: )'), false, 'syntax error')
  t.equal(await isValidFlux('from(bucket: "b") |> range(start: -1h) |> sum(columnz: "x")'), false, 'unknown parameter')
  t.equal(await isValidFlux('from(bucket: "b") |> range(start: -1h) |> set(key: "_field", value: 1)'), false, 'wrong type')
  const window = dayWindow(DAY_FOR_TESTS, TZ)
  for (const client of [undefined, HOSTILE_CLIENT, INJECTION_CLIENT, '${x}', '") |> drop(columns: ["a"]) //']) {
    const query = aggregateQuery('usage', MEASUREMENT, window.startMs, window.endMs, client).toString()
    t.equal(await isValidFlux(query), true, `day query valid for client ${JSON.stringify(client)}`)
  }
})

runSourceContract(t, async (t) => {
  const fake = await fakeServer(t)
  const source = sourceFor(fake)
  t.teardown(() => source.close())
  return {
    source,
    writeLegacy: async (points) => {
      const r = await fetch(`${fake.url}/api/v2/write?org=${fake.org}&bucket=${fake.bucket}&precision=ms`, {
        method: 'POST',
        headers: { authorization: `Token ${fake.token}` },
        body: legacyLines(MEASUREMENT, points),
      })
      if (r.status !== 204) throw new Error(`legacy write failed: ${r.status} ${await r.text()}`)
    },
    breakStore: async () => {
      t.match(await caught(collect(sourceFor(fake, 'no_such_bucket'), DAY_FOR_TESTS)), { name: 'InfluxQueryError', status: 404 }, 'a missing bucket throws')
      await fake.close()
    },
  }
})

t.test('an error table after HTTP 200 throws', async (t) => {
  const fake = await fakeServer(t)
  const source = sourceFor(fake)
  const event = {
    client_org_id: 'acme',
    external_user: 'alice',
    model: 'm',
    input_tokens: 1,
    output_tokens: 1,
    total_tokens: 2,
    cost_nano_usd: 1n,
    occurred_at_ms: dayWindow(DAY_FOR_TESTS, TZ).startMs,
  }
  await source.ingest([
    { ...event, request_id: 'a' },
    { ...event, request_id: 'b', external_user: 'bob' },
  ])
  fake.failNextQueryMidStream = true
  await t.rejects(collect(source, DAY_FOR_TESTS), InfluxQueryError)
  t.equal((await collect(source, DAY_FOR_TESTS)).length, 2, 'the next query is whole')
})

t.test('version detection, health and write failures', async (t) => {
  const fake = await fakeServer(t)
  t.strictSame(await detectInfluxVersion(fake.url), { version: 'v2.7.11', major: 2, queryLanguage: 'flux' })
  const source = sourceFor(fake)
  t.match(await source.check(), { status: 'up', detail: { version: 'v2.7.11', query_language: 'flux', last_error: null } })
  const wrongToken = createFluxSource({ url: fake.url, token: 'nope', org: fake.org, bucket: fake.bucket, measurement: MEASUREMENT, timeoutMs: 5_000 })
  const event = {
    request_id: 'x',
    client_org_id: 'acme',
    external_user: 'alice',
    model: 'm',
    input_tokens: 1,
    output_tokens: 1,
    total_tokens: 2,
    cost_nano_usd: 1n,
    occurred_at_ms: 0,
  }
  const refused = await wrongToken.ingest([event]).catch((e: unknown) => e)
  t.ok(refused instanceof RawStoreUnavailableError, 'a write InfluxDB refuses: the store is unavailable (503)')
  t.match(refused, { statusCode: 503, message: /InfluxDB refused the write \(HTTP 401\); see the service log/ })
  t.match((refused as Error).cause, { message: /HTTP 401/ }, "InfluxDB's answer travels as the cause, for the log")
  t.match(await caught(collect(wrongToken, DAY_FOR_TESTS)), { name: 'InfluxQueryError', status: 401 })
  await fake.close()
  await t.rejects(source.ingest([event]), RawStoreUnavailableError)
  t.match(await source.check(), { status: 'down' })
})

t.test('every Flux text the source sent passed the checker', async (t) => {
  const sent = fakes.flatMap((f) => f.queries)
  t.ok(sent.length >= 10, `${sent.length} queries checked`)
  t.strictSame(
    fakes.flatMap((f) => f.invalidQueries),
    [],
  )
})
