// Rows stored by an earlier version with invalid UTF-8 ids (a lone surrogate, accepted before ingest
// refused it) are billed, and never make the client-by-client walk skip another client.
import t from 'tap'
import type { Db } from '../../src/db/sqlite/open.js'
import { fixedClock } from '../../src/clock.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch } from '../helper.js'

/** What better-sqlite3 stored for "surr\ud800" before: the surrogate's three bytes, invalid UTF-8. */
const LONE_HIGH = Buffer.from('surr\xED\xA0\x80', 'latin1')
const LONE_LOW = Buffer.from('surr\xED\xB0\x80', 'latin1')

function insertRaw(db: Db, requestId: string, client: Buffer, tokens: number) {
  db.$client
    .prepare(
      `INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens,
                                 cost_nano_usd, occurred_at, received_at)
       VALUES (?, CAST(? AS TEXT), 'm', 'u', ?, 0, ?, 1000, ?, ?)`,
    )
    .run(requestId, client, tokens, tokens, Date.parse('2026-11-20T10:00:00Z'), DEFAULT_NOW_MS - 86_400_000)
}

for (const reader of ['in-thread', 'worker'] as const) {
  t.test(`the day is read whole around ill-formed ids (${reader})`, async (t) => {
    const { app, db } = await buildTestApp(t, {
      source: (store) =>
        createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS), workerMinRecords: reader === 'worker' ? 0 : 1_000_000 }),
    })
    // Between the stored bytes of "surr\ud800" (ED A0 80) and its U+FFFD reading (EF BF BD) lie
    // clients such as "surr\ue000" and "surr\ufffc": on the old walk they were never billed.
    const neighbours = ['acme', 'surr', 'surr\ue000', 'surr\ufffc', 'zeta']
    const res = await postEvents(
      app,
      neighbours.map((client, i) => ({
        request_id: `n-${i}`,
        client_org_id: client,
        model: 'm',
        external_user: 'u',
        input_tokens: 100 + i,
        output_tokens: 0,
        cost_usd: '0.000001',
        timestamp: '2026-11-20T10:00:00Z',
      })),
    )
    t.equal(res.statusCode, 200, res.body)
    insertRaw(db, 'old-1', LONE_HIGH, 7)
    insertRaw(db, 'old-2', LONE_LOW, 11)
    t.equal(db.$client.prepare('SELECT count(DISTINCT CAST(client_org_id AS BLOB)) FROM usage_events').pluck().get(), 7, 'seven stored ids')

    const run = await runBatch(app, { date: '2026-11-20' })
    t.equal(run.statusCode, 200)
    t.match(run.json().runs[0], { status: 'succeeded_with_warnings', records_processed: 7 }, 'every record aggregated')

    const rows = db.$client.prepare("SELECT client_org_id, total_tokens, total_requests FROM client_daily_usage WHERE usage_date = '2026-11-20'").all() as Array<{
      client_org_id: string
      total_tokens: number
      total_requests: number
    }>
    const byClient = new Map(rows.map((r) => [r.client_org_id, r]))
    neighbours.forEach((client, i) => t.equal(byClient.get(client)?.total_tokens, 100 + i, `${JSON.stringify(client)} billed`))
    // Both old ids read back as the same text: one row, both records, never two rows for one id.
    const lossy = LONE_HIGH.toString('utf8')
    t.equal(LONE_LOW.toString('utf8'), lossy)
    t.match(byClient.get(lossy), { total_tokens: 18, total_requests: 2 }, 'the ill-formed ids are billed under the id as read')
    t.equal(rows.length, neighbours.length + 1)
    t.equal(
      rows.reduce((n, r) => n + r.total_requests, 0),
      7,
      'no record lost, none counted twice',
    )
  })
}
