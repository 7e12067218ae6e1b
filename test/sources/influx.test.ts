// Choosing the dialect from /ping, and the InfluxQL wire format as 2.x and 3.x see it.
import t from 'tap'
import { dayWindow } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import { createInfluxSource } from '../../src/sources/influx.js'
import type { FetchFn } from '../../src/sources/influx-http.js'
import { InfluxQueryError } from '../../src/sources/influx-http.js'
import { startFakeInflux2 } from '../helpers/fake-influx2.js'
import { influxdUnavailable, startInfluxd } from '../helpers/influxd.js'
import { DAY_FOR_TESTS, TZ, collect } from '../helpers/source-contract.js'

function recordingLog() {
  const lines: Array<{ level: string; obj: object; msg: string }> = []
  return {
    lines,
    info: (obj: object, msg: string) => lines.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj, msg }),
  }
}

const event = {
  request_id: 'r1',
  client_org_id: 'acme',
  external_user: 'alice',
  model: 'm',
  input_tokens: 3,
  output_tokens: 4,
  total_tokens: 7,
  cost_nano_usd: 150n,
  occurred_at_ms: dayWindow(DAY_FOR_TESTS, TZ).startMs + 1_000,
}

t.test('auto on InfluxDB 2 chooses Flux and logs the choice once', async (t) => {
  const fake = await startFakeInflux2(t)
  const log = recordingLog()
  const config = loadConfig({
    INFLUXDB_URL: fake.url,
    INFLUXDB_TOKEN: fake.token,
    INFLUXDB_ORG: fake.org,
    INFLUXDB_BUCKET: fake.bucket,
  })
  const source = await createInfluxSource(config, { log })
  await source.ready!()
  t.equal(source.dialect, 'flux')
  t.equal(source.dataSource, 'influxdb_first')
  t.strictSame(log.lines, [
    { level: 'info', obj: { version: 'v2.7.11', query_language: 'flux', chosen_by: 'auto', measurement: 'usage_tracking' }, msg: 'InfluxDB query dialect chosen' },
  ])
  await source.ingest([event])
  t.match(await collect(source, DAY_FOR_TESTS), [{ client_org_id: 'acme', total_requests: 1, raw_cost_nano_usd: 150n }])
})

t.test('auto with an unreachable server starts, never guesses, and refuses work with a clear 503', async (t) => {
  const config = loadConfig({ INFLUXDB_URL: 'http://127.0.0.1:9', INFLUXDB_BUCKET: 'b', INFLUXDB_TIMEOUT_MS: '2000' })
  const log = recordingLog()
  const source = await createInfluxSource(config, { log, retry: { initialMs: 60_000, maxMs: 60_000 } })
  t.teardown(() => source.close())
  t.equal(source.dialect, 'unknown (detecting)')
  t.equal(source.listClients, undefined, 'no guessed dialect behind it')
  // The 503 says it in our words; why /ping failed travels as the cause (the log, the run ledger, /health).
  const refusal = {
    statusCode: 503,
    message: /InfluxDB query dialect not known yet \(INFLUXDB_QUERY_LANGUAGE=auto; its \/ping has not answered\); detection retries in the background/,
    cause: { message: /127\.0\.0\.1:9\/ping did not answer/ },
  }
  await t.rejects(source.ready!(), refusal)
  await t.rejects(source.ingest([event]), refusal)
  await t.rejects(collect(source, DAY_FOR_TESTS), refusal)
  const health = await source.check()
  t.equal(health.status, 'down')
  t.match(health.detail, { query_language: null, error: /dialect not known yet/, detection: { state: 'detecting', attempts: Number } })
  t.ok((health.detail.detection as { attempts: number }).attempts >= 1)
  t.equal(log.lines.filter((l) => l.level === 'warn').length, 1, 'the failing attempts are logged once, not each')
  t.notOk(log.lines.some((l) => l.msg === 'InfluxDB query dialect chosen'))
})

t.test('InfluxDB 3: InfluxQL with a Bearer token, /api/v2/write, streamed chunks merged', async (t) => {
  const requests: Array<{ url: URL; auth: string | null; body?: string }> = []
  // Two chunks as 3.x/1.x stream them: one JSON document per line, a series split across lines.
  const chunks = [
    JSON.stringify({ results: [{ statement_id: 0, series: [
      { name: 'usage_tracking', tags: { client_org_id: 'acme', external_user: '', model: 'm' }, columns: ['time', 'input_tokens', 'output_tokens', 'total_tokens', 'cost_usd', 'records'], values: [[0, 1, 2, 3, 0.1, 1]] },
    ], partial: true }] }),
    JSON.stringify({ results: [{ statement_id: 0, series: [
      { name: 'usage_tracking', tags: { client_org_id: 'acme', external_user: 'unknown', model: 'm' }, columns: ['time', 'input_tokens', 'output_tokens', 'total_tokens', 'cost_usd', 'records'], values: [[0, 10, 20, 30, 0.2, 2]] },
      { name: 'usage_tracking', tags: { client_org_id: 'acme', external_user: 'bob', model: 'm' }, columns: ['time', 'input_tokens', 'output_tokens', 'total_tokens', 'cost_usd', 'records'], values: [[0, 5, 5, 10, 0.30000000000000004, 1]] },
    ] }] }),
  ]
  let queryBody = chunks.map((c) => `${c}\n`)
  const fakeFetch: FetchFn = async (input, init) => {
    const url = new URL(String(input))
    const auth = new Headers(init?.headers).get('authorization')
    requests.push({ url, auth, body: typeof init?.body === 'string' ? init.body : undefined })
    if (url.pathname === '/ping') return Response.json({ version: '3.0.1', revision: 'abc' })
    if (url.pathname === '/api/v2/write') return new Response(null, { status: 204 })
    if (url.pathname === '/query') {
      const encoder = new TextEncoder()
      const pieces = queryBody.join('')
      // Deliver in awkward slices, so a JSON line arrives in several reads.
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < pieces.length; i += 17) controller.enqueue(encoder.encode(pieces.slice(i, i + 17)))
          controller.close()
        },
      })
      return new Response(stream, { status: 200, headers: { 'content-type': 'application/json' } })
    }
    return new Response('not found', { status: 404 })
  }
  const config = loadConfig({ INFLUXDB_URL: 'http://influx3.invalid:8181', INFLUXDB_TOKEN: 'apiv3_secret', INFLUXDB_DATABASE: 'usage' })
  const source = await createInfluxSource(config, { log: recordingLog(), fetch: fakeFetch })
  await source.ready!()
  t.equal(source.dialect, 'influxql')
  await source.ingest([event])
  const rows = await collect(source, DAY_FOR_TESTS)
  t.strictSame(
    rows.map((r) => ({ ...r, raw_cost_nano_usd: String(r.raw_cost_nano_usd) })),
    [
      { client_org_id: 'acme', external_user: 'bob', model: 'm', input_tokens: 5, output_tokens: 5, total_tokens: 10, raw_cost_nano_usd: '300000000', total_requests: 1 },
      { client_org_id: 'acme', external_user: 'unknown', model: 'm', input_tokens: 11, output_tokens: 22, total_tokens: 33, raw_cost_nano_usd: '300000000', total_requests: 3 },
    ],
  )
  const write = requests.find((r) => r.url.pathname === '/api/v2/write')!
  t.equal(write.url.searchParams.get('bucket'), 'usage')
  t.equal(write.url.searchParams.get('precision'), 'ns')
  t.match(write.body, /^usage_tracking,client_org_id=acme,external_user=alice,model=m input_tokens=3i,output_tokens=4i,total_tokens=7i,cost_usd=0\.000000150,request_id="r1" \d{19}$/)
  const query = requests.find((r) => r.url.pathname === '/query')!
  t.equal(query.auth, 'Bearer apiv3_secret')
  t.equal(query.url.searchParams.get('db'), 'usage')
  t.equal(query.url.searchParams.get('epoch'), 'ms')
  t.equal(query.url.searchParams.get('chunked'), 'true')
  t.match(query.url.searchParams.get('q'), /GROUP BY "client_org_id", "external_user", "model"$/)

  queryBody = [`${JSON.stringify({ error: 'database not found: usage' })}\n`]
  await t.rejects(collect(source, DAY_FOR_TESTS), InfluxQueryError, 'a top-level error throws')
  queryBody = ['<html>gateway</html>']
  await t.rejects(collect(source, DAY_FOR_TESTS), /not JSON/)
})

t.test('auto on InfluxDB 1.x (real influxd) chooses InfluxQL and /write', { skip: influxdUnavailable() ?? false }, async (t) => {
  const server = await startInfluxd(t, 'auto_test')
  const log = recordingLog()
  const source = await createInfluxSource(loadConfig({ INFLUXDB_URL: server.url, INFLUXDB_DATABASE: 'auto_test' }), { log })
  await source.ready!()
  t.equal(source.dialect, 'influxql')
  t.match(log.lines[0]?.obj, { version: /^1\.6/, query_language: 'influxql' })
  await source.ingest([event])
  t.match(await collect(source, DAY_FOR_TESTS), [{ client_org_id: 'acme', total_requests: 1, raw_cost_nano_usd: 150n }])
})
