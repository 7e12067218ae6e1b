// Store.generation on a real SQLite file: it moves with every committed write a summary read can
// see (day replace, rate, markup, void) — this store object's or another's on the file — and stays
// put otherwise, raw ingestion included (the ingest writer's large ones too), so the answer cache is
// neither stale nor needlessly cold.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openSqliteStore, type SqliteStore } from '../../src/db/sqlite/store.js'
import { buildClientDay } from '../../src/batch/rows.js'
import { rawEvent } from '../helpers/events.js'

const DAY = '2026-11-20'
const AT = Date.parse('2026-11-20T10:00:00Z')

function openStore(t: Test): SqliteStore {
  const store = openSqliteStore({ path: join(t.testdir(), 'usage.db') })
  t.teardown(() => store.close())
  return store
}

const event = (id: string) => rawEvent({ request_id: id, model: 'm', external_user: 'u', input_tokens: 1, output_tokens: 1, cost_nano_usd: 5n, occurred_at_ms: AT })

t.test('moves with each summary-visible write, whoever commits it; reads and raw records leave it', async (t) => {
  const store = openStore(t)
  const seen = [await store.generation()]
  const expectMoved = async (what: string) => {
    const now = await store.generation()
    t.notOk(seen.includes(now), `${what}: a new generation`)
    seen.push(now)
  }
  const expectSame = async (what: string) => t.equal(await store.generation(), seen.at(-1), `${what}: the same generation`)

  await expectSame('nothing written')
  await store.summaries.clientDaily('acme', '2026-11-01', '2026-11-30')
  await store.rates.list('2026-11-01', '2026-11-30')
  await expectSame('reads')
  t.equal((await store.rawEvents.ingest([event('r1'), event('r2')], AT)).accepted, 2)
  await expectSame('raw records ingested (no summary changes until a run writes them)')

  const staging = await store.summaries.openDayStaging()
  await staging.add(buildClientDay('acme', [{ external_user: 'u', model: 'm', sums: { input_tokens: 2, output_tokens: 2, total_tokens: 4, total_requests: 2, raw_cost_nano_usd: 10n } }], { markupRate: '1.3', usdPln: null, dataSource: 'sqlite' }))
  await expectSame('a day staged but not committed')
  // A day is committed under its running run (the ledger refuses any other).
  const { run } = await store.runs.claim({ date: DAY, trigger: 'api', dataSource: 'sqlite', startedAt: '2026-11-28T12:00:00.000Z', owner: '1@test' })
  await staging.commit({ date: DAY, runId: run.id, now: '2026-11-28T12:00:00.000Z' })
  await expectMoved('the day replaced')

  await store.rates.setManual({ usage_date: DAY, rate: '4.1', fetched_at: '2026-11-28T12:00:00.000Z' })
  await expectMoved('a manual rate')
  await store.rates.saveNbp({
    usage_date: '2026-11-21',
    rate: '4.0341',
    effective_date: '2026-11-20',
    table_no: '225/A/NBP/2026',
    policy: 'previous-business-day',
    fetched_at: '2026-11-28T12:00:00.000Z',
  })
  await expectMoved('an NBP rate')
  await store.pricing.append({ client_org_id: 'acme', effective_from: '2026-12-01', markup_rate: '1.25', created_at: '2026-11-28T12:00:00.000Z' })
  await expectMoved('a markup')
  t.equal((await store.voids.void(['r1'], 'test', AT)).voided.length, 1)
  await expectMoved('a void')

  // Another store object on the file (another process, the CLI) writes: this one sees it too.
  const other = openSqliteStore({ path: store.path })
  t.teardown(() => other.close())
  await other.rates.setManual({ usage_date: '2026-11-22', rate: '4.2', fetched_at: '2026-11-28T12:00:00.000Z' })
  await expectMoved('a rate set by another process')
  await expectSame('and then nothing')

  // A large ingest, stored by the ingest writer on its own connection: raw records still change no summary.
  const many = Array.from({ length: 1_500 }, (_, i) => event(`big-${i}`))
  t.equal((await store.rawEvents.ingest(many, AT)).accepted, 1_500)
  t.equal((await other.rawEvents.ingest(many.map((e) => ({ ...e, request_id: `${e.request_id}-other` })), AT)).accepted, 1_500)
  await expectSame('large ingests through the writer connections of both store objects')

  // A change by hand outside the service is seen once it moves the counter too (docs/operations.md).
  const hand = new Database(store.path)
  t.teardown(() => hand.close())
  hand.prepare("UPDATE client_daily_usage SET total_tokens = total_tokens + 1 WHERE client_org_id = 'acme'").run()
  await expectSame('an edit by hand alone')
  hand.exec(`INSERT INTO database_metadata (key, value) VALUES ('write_generation', '1')
    ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1`)
  await expectMoved('the documented statement after an edit by hand')
  t.equal(seen.length, 8, 'seven moves seen')
})
