// The InfluxQL source against a real influxd (1.6.7 from Debian), plus what only InfluxDB has.
import t from 'tap'
import { createInfluxQLSource, aggregateStatement, type InfluxQLSource } from '../../src/sources/influxql.js'
import { UnrepresentablePointError } from '../../src/sources/line-protocol.js'
import { legacyLines } from '../helpers/legacy-points.js'
import { rawEvent } from '../helpers/events.js'
import { RawStoreUnavailableError } from '../../src/errors.js'
import { InfluxQueryError } from '../../src/sources/influx-http.js'
import { influxdUnavailable, startInfluxd, type Influxd } from '../helpers/influxd.js'
import { dayWindow } from '../../src/clock.js'
import { aggregateByClient } from '../../src/sources/per-client.js'
import type { AggregateRow } from '../../src/sources/types.js'
import { DAY_FOR_TESTS, HOSTILE_CLIENT, TZ, buildDataset, collect, expectedRows, runSourceContract, sortRows } from '../helpers/source-contract.js'

const MEASUREMENT = 'usage_tracking'

const skip = influxdUnavailable()
if (skip) {
  t.test('InfluxQL source against a real influxd', { skip: skip }, () => {})
} else {
  let server: Influxd
  let databases = 0
  t.before(async () => {
    server = await startInfluxd(t)
  })

  const makeSource = (database: string, url = server.url): InfluxQLSource =>
    createInfluxQLSource({
      url,
      database,
      measurement: MEASUREMENT,
      auth: { kind: 'none' },
      writeApi: { kind: 'v1' },
      timeoutMs: 10_000,
    })

  runSourceContract(t, async (t, options) => {
    // A database per test: tests share one server, never each other's points.
    const database = `contract_${++databases}`
    const host = options?.dedicatedStore ? await startInfluxd(t, database) : server
    if (host === server) await server.admin(`CREATE DATABASE "${database}"`)
    const source = makeSource(database, host.url)
    t.teardown(() => source.close())
    return {
      source,
      writeLegacy: async (points) => {
        await host.write(database, legacyLines(MEASUREMENT, points))
      },
      breakStore: async () => {
        // A database that does not exist fails inside the answer (HTTP 200 on 1.x): must throw too.
        await t.rejects(collect(makeSource('no_such_database', host.url), DAY_FOR_TESTS), InfluxQueryError, 'a missing database throws')
        await host.stop()
      },
    }
  })

  t.test('errors reported inside an HTTP 200 answer throw', async (t) => {
    const source = makeSource('usage_test')
    await source.ingest([
      rawEvent({ request_id: 'text-field', cost_nano_usd: 1n, occurred_at_ms: Date.UTC(2026, 2, 29, 12) }),
    ])
    // The first statement succeeds and the second fails: influxd answers HTTP 200 with the error
    // inside results[1], after rows were already streamed.
    const seen: unknown[] = []
    await t.rejects(async () => {
      for await (const series of source.query('SELECT sum("input_tokens") FROM "usage_tracking"; SELECT sum("request_id") FROM "usage_tracking"')) {
        seen.push(series)
      }
    }, /unsupported sum iterator/)
    t.equal(seen.length, 1, 'the failing statement came after a good one')
    const parseError = await (async () => {
      for await (const _ of source.query('SELECT FROM')) void _
    })().then(
      () => undefined,
      (e: unknown) => e,
    )
    t.ok(parseError instanceof InfluxQueryError)
    t.equal((parseError as InfluxQueryError).status, 400, 'HTTP status kept')
    t.match((parseError as Error).message, /HTTP 400: .*error parsing query/, 'body excerpt kept')
  })

  t.test('queries left early let go of their answers; the next queries work', async (t) => {
    const database = 'left_early'
    await server.admin(`CREATE DATABASE "${database}"`)
    const source = makeSource(database)
    const at = Date.UTC(2026, 2, 29, 12)
    await source.ingest(['a', 'b', 'c'].map((client, i) => rawEvent({ request_id: `r-${i}`, client_org_id: client, cost_nano_usd: 1n, occurred_at_ms: at })))
    const statement = `SELECT "input_tokens" FROM "${MEASUREMENT}" GROUP BY "client_org_id"`
    // A connection given back to the pool with some of a left answer still unread would garble
    // the next answer sent over it; one never given back nor closed would pile up.
    for (let i = 0; i < 20; i++) {
      for await (const series of source.query(statement)) {
        t.equal(series.tags?.client_org_id, 'a')
        break
      }
    }
    const clients: string[] = []
    for await (const series of source.query(statement)) clients.push(series.tags!.client_org_id!)
    t.strictSame(clients, ['a', 'b', 'c'])
    t.strictSame(await source.listClients({ startMs: at - 1, endMs: at + 1 }), ['a', 'b', 'c'])
  })

  t.test('values InfluxDB cannot store as tags are refused before anything is written', async (t) => {
    const database = 'refusals'
    await server.admin(`CREATE DATABASE "${database}"`)
    const source = makeSource(database)
    const good = rawEvent({ request_id: 'ok-1', cost_nano_usd: 1n, occurred_at_ms: Date.UTC(2026, 2, 29, 12) })
    await t.rejects(source.ingest([good, { ...good, request_id: 'bad', client_org_id: 'a\nb' }]), UnrepresentablePointError)
    await t.rejects(source.ingest([{ ...good, request_id: 'bad2', model: 'ends\\' }]), UnrepresentablePointError)
    t.strictSame(await collect(source, DAY_FOR_TESTS), [], 'the valid event of the refused batch was not written')
  })

  t.test('client by client gives the grouped result; clients are listed, hostile ids included', async (t) => {
    const database = 'per_client'
    await server.admin(`CREATE DATABASE "${database}"`)
    const source = makeSource(database)
    const data = buildDataset()
    await source.ingest(data.events)
    await server.write(database, legacyLines(MEASUREMENT, data.legacy))
    const window = dayWindow(DAY_FOR_TESTS, TZ)
    const clients = await source.listClients(window)
    t.strictSame(clients, ['acme', 'beta', HOSTILE_CLIENT].sort())
    const rows: AggregateRow[] = []
    for await (const outcome of aggregateByClient(source, window, clients, 2)) {
      if ('error' in outcome) throw outcome.error
      rows.push(...outcome.rows)
    }
    t.strictSame(
      sortRows(rows).map((r) => ({ ...r, raw_cost_nano_usd: String(r.raw_cost_nano_usd) })),
      expectedRows(data, DAY_FOR_TESTS).map((r) => ({ ...r, raw_cost_nano_usd: String(r.raw_cost_nano_usd) })),
    )
  })

  t.test('the statement quotes every identifier and literal', async (t) => {
    const q = aggregateStatement('my "measure"', 0, 86_400_000, `x' OR '1'='1\\`)
    t.match(q, `FROM "my \\"measure\\""`)
    t.match(q, `"client_org_id" = 'x\\' OR \\'1\\'=\\'1\\\\'`)
    t.notMatch(q, /=~|!~/, 'no regex operators')
  })

  t.test('writes to a stopped server fail with RawStoreUnavailableError', async (t) => {
    const other = await startInfluxd(t, 'down_test')
    const source = createInfluxQLSource({
      url: other.url,
      database: 'down_test',
      measurement: MEASUREMENT,
      auth: { kind: 'none' },
      writeApi: { kind: 'v1' },
      timeoutMs: 5_000,
    })
    const health = await source.check()
    t.equal(health.status, 'up')
    t.match(health.detail, { version: /^1\./, query_language: 'influxql' })
    await other.stop()
    const event = rawEvent({ request_id: 'x', cost_nano_usd: 1n, occurred_at_ms: Date.UTC(2026, 2, 29, 12) })
    const error = await source.ingest([event]).then(
      () => undefined,
      (e: unknown) => e,
    )
    t.ok(error instanceof RawStoreUnavailableError, 'RawStoreUnavailableError')
    t.equal((error as { statusCode?: number }).statusCode, 503)
    t.equal((await source.check()).status, 'down')
  })
}
