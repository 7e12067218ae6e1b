// Voiding wrong usage (SPEC §9), embedded store: audited, counted by no batch and no live read, never
// ingested again, never back from an archive; the next rerun of the day counts the corrections.
// One suite, two stores: every case runs on a SQLite file and with DATABASE_URL on PostgreSQL.
import t from 'tap'
import pino from 'pino'
import { dirname, join } from 'node:path'
import { dayWindow } from '../../src/clock.js'
import { restoreArchive } from '../../src/lifecycle/archive.js'
import { runRetention } from '../../src/lifecycle/retention.js'
import { expectNano, expectTimesRate, nanoText, postEvents, runBatch, type TestApp } from '../helpers/app.js'
import { event, type EventInput } from '../helpers/events.js'
import { dayEvents } from '../helpers/events.js'
import { storeKinds } from '../helpers/store-apps.js'

const DAY = '2026-11-20'
const TODAY = '2026-11-28'
const ev = (request_id: string, timestamp: string, extra: Partial<EventInput> = {}): EventInput =>
  event({ request_id, timestamp, input_tokens: 100, output_tokens: 10, cost_usd: '0.5', ...extra })

const voidThem = (app: TestApp['app'], request_ids: unknown, reason: unknown = 'test traffic') =>
  app.inject({ method: 'POST', url: '/usage/events/void', payload: { request_ids, reason } })

for (const kind of await storeKinds(t)) {
  t.test(kind.name, async (t) => {
    t.test('a voided record leaves batches and live reads, is audited, and cannot come back by ingest', async (t) => {
      const { app, query, value, digest, clock, store } = await kind.build(t)
      const events = [
        ev('keep-1', `${DAY}T09:00:00Z`),
        ev('wrong-1', `${DAY}T10:00:00Z`, { cost_usd: '250000', external_user: 'bot' }),
        ev('keep-2', `${DAY}T11:00:00Z`, { model: 'm2', cost_usd: '0.500000001' }),
        ev('today-ok', '2026-11-28T08:00:00Z'),
        ev('today-wrong', '2026-11-28T09:00:00Z', { input_tokens: 5000 }),
      ]
      t.same((await postEvents(app, events)).json(), { accepted: 5, duplicates: 0 })
      const first = (await runBatch(app, { date: DAY })).json().runs[0]
      t.match(first, { records_processed: 3, data_corrections: 0 })
      const dailyUrl = `/usage/clients/acme/daily?from=${DAY}&to=${DAY}&money=string`
      t.match((await app.inject({ url: dailyUrl })).json().days, [{ total_requests: 3, raw_cost_usd: '250001.000000001' }])
      const todayBefore = (await app.inject({ url: '/usage/clients/acme/today' })).json()
      t.match(todayBefore, { total_requests: 2, input_tokens: 5100 })

      clock.advance(60_000)
      const generation = await store.generation()
      const res = await voidThem(app, ['wrong-1', 'today-wrong', 'never-seen', 'wrong-1'], 'test traffic billed to acme by mistake')
      t.equal(res.statusCode, 200, res.body)
      t.same(res.json(), { voided: 2, not_found: ['never-seen'], already_voided: [], usage_dates: [DAY, TODAY] })
      t.not(await store.generation(), generation, 'the write generation moved: cached reads are not served as before')

      t.equal(Number(await value("SELECT count(*) FROM usage_events WHERE request_id IN ('wrong-1', 'today-wrong')")), 0)
      t.match((await query("SELECT * FROM usage_event_voids WHERE request_id = 'wrong-1'"))[0], {
        client_org_id: 'acme',
        external_user: 'bot',
        cost_nano_usd: 250_000_000_000_000,
        reason: 'test traffic billed to acme by mistake',
        voided_at: clock.now(),
      })

      // No live read counts it, even within the live figures' cache period.
      const todayAfter = (await app.inject({ url: '/usage/clients/acme/today' })).json()
      t.match(todayAfter, { total_requests: 1, input_tokens: 100 })

      // The next rerun of the day reflects the void and counts the corrections.
      const rerun = (await runBatch(app, { date: DAY })).json().runs[0]
      t.equal(rerun.records_processed, 2)
      t.ok(rerun.data_corrections > 0, `corrections counted: ${rerun.data_corrections}`)
      // Without the voided record, to the nano-unit: 0.5 + 0.500000001 USD, marked up at the default 1.3.
      const raw = expectNano('0.5') + expectNano('0.500000001')
      const daily = (await app.inject({ url: dailyUrl })).json()
      t.match(daily.days, [{ total_requests: 2, input_tokens: 200, raw_cost_usd: nanoText(raw), markup_cost_usd: nanoText(expectTimesRate(raw, '1.3')), unique_users: 1 }])
      t.equal(daily.days.length, 1)

      // Its request_id can never be ingested again, with the same content or any other; nothing of the request is stored.
      const stored = await digest()
      for (const again of [events[1]!, { ...events[1]!, cost_usd: '0.01' }]) {
        const refused = await postEvents(app, [ev('new-1', `${DAY}T12:00:00Z`), again])
        t.equal(refused.statusCode, 409)
        t.match(refused.json().errors, [{ index: 1, field: 'request_id', message: /voided .*test traffic billed to acme by mistake.*cannot be ingested again/ }])
      }
      t.equal(await digest(), stored)

      // Voiding again changes nothing and says so.
      const twice = await voidThem(app, ['wrong-1'])
      t.same(twice.json(), { voided: 0, not_found: [], already_voided: ['wrong-1'], usage_dates: [] })
      t.equal(await digest(), stored)
    })

    t.test('GET /usage/events/voided lists what was voided, the original record, the reason and when', async (t) => {
      const { app, clock } = await kind.build(t)
      await postEvents(app, [ev('a', `${DAY}T10:00:00+01:00`, { cost_usd: '0.000000150', total_tokens: 110 }), ev('b', '2026-11-05T10:00:00Z'), ev('c', `${DAY}T12:00:00Z`)])
      const voidedAt = clock.now()
      t.equal((await voidThem(app, ['a', 'b'], 'duplicate of gateway retry')).statusCode, 200)

      const listed = await app.inject({ url: `/usage/events/voided?from=${DAY}&to=${DAY}` })
      t.equal(listed.statusCode, 200)
      t.same(listed.json(), {
        from: DAY,
        to: DAY,
        voids: [
          {
            request_id: 'a',
            usage_date: DAY,
            reason: 'duplicate of gateway retry',
            voided_at: new Date(voidedAt).toISOString(),
            record: {
              client_org_id: 'acme',
              model: 'm1',
              external_user: 'alice',
              input_tokens: 100,
              output_tokens: 10,
              total_tokens: 110,
              cost_usd: 0.00000015,
              timestamp: `${DAY}T09:00:00.000Z`,
              received_at: new Date(voidedAt).toISOString(),
            },
          },
        ],
      })
      const month = (await app.inject({ url: '/usage/events/voided' })).json()
      t.same(month.voids.map((v: { request_id: string }) => v.request_id), ['b', 'a'], 'default: the current month, oldest record first')
      t.same((await app.inject({ url: '/usage/events/voided?from=2026-10-01&to=2026-10-31' })).json().voids, [])
    })

    t.test('validation: 1..5000 ids, a reason of 1..500 characters, well-formed text without NUL; nothing changes', async (t) => {
      const { app, digest } = await kind.build(t)
      await postEvents(app, [ev('x', `${DAY}T10:00:00Z`)])
      const stored = await digest()
      const cases: Array<[string, unknown, RegExp]> = [
        ['no ids', { request_ids: [], reason: 'r' }, /request_ids/],
        ['5,001 ids', { request_ids: Array.from({ length: 5001 }, (_, i) => `id-${i}`), reason: 'r' }, /request_ids/],
        ['empty id', { request_ids: [''], reason: 'r' }, /request_ids/],
        ['long id', { request_ids: ['x'.repeat(201)], reason: 'r' }, /request_ids/],
        ['no reason', { request_ids: ['x'] }, /reason/],
        ['empty reason', { request_ids: ['x'], reason: '' }, /reason/],
        ['blank reason', { request_ids: ['x'], reason: '   ' }, /reason/],
        ['long reason', { request_ids: ['x'], reason: 'r'.repeat(501) }, /reason/],
        ['lone surrogate id', { request_ids: ['ok', 'x\ud800'], reason: 'r' }, /request_ids/],
        ['NUL id', { request_ids: ['x\u0000'], reason: 'r' }, /request_ids/],
        ['lone surrogate reason', { request_ids: ['x'], reason: 'why\udc00' }, /reason/],
        ['NUL reason', { request_ids: ['x'], reason: 'why\u0000' }, /reason/],
        ['ids not strings', { request_ids: [1], reason: 'r' }, /request_ids/],
        ['unknown field', { request_ids: ['x'], reason: 'r', force: true }, /force/],
      ]
      for (const [name, payload, field] of cases) {
        const res = await app.inject({ method: 'POST', url: '/usage/events/void', payload: payload as object })
        t.equal(res.statusCode, 400, `${name}: ${res.body.slice(0, 200)}`)
        t.ok(res.json().errors?.some((e: { field: string }) => field.test(e.field)), `${name}: names the field`)
      }
      const indexed = await voidThem(app, ['ok', 'x\ud800'], 'r')
      t.match(indexed.json().errors, [{ index: 1, field: 'request_ids', message: /ill-formed Unicode/ }], 'names the index')
      t.equal(await digest(), stored, 'nothing voided')
      const ok = await voidThem(app, ['x'], 'r'.repeat(500))
      t.equal(ok.statusCode, 200, '500 characters are fine')
    })

    t.test('a voided record never comes back with an archive restore, and retention waits for the rerun after a void', async (t) => {
      const h = await kind.build(t)
      const log = pino({ level: 'silent' })
      const day = '2026-11-10'
      const archiveDir = join(dirname(h.dbPath), 'archives')
      const TZ = 'Europe/Warsaw'
      const embedded = h.config.DATABASE_URL === undefined ? 'sqlite' : 'postgresql'
      const retention = () => runRetention({ store: h.store, clock: h.clock, log, timeZone: TZ, retentionDays: 3, influxdbFirst: false, archiveDir, embedded })
      const events = dayEvents(day, 12, 'r')
      t.equal((await postEvents(h.app, events)).statusCode, 200)
      h.clock.advance(1_000)
      t.equal((await runBatch(h.app, { date: day })).statusCode, 200)
      h.clock.advance(1_000)
      t.match((await retention()).days, [{ date: day, action: 'deleted', rows: 12 }], 'archived with every record, then removed')

      // Restore, void one record, and the archive (which still holds it) is never a way back.
      const restore = () => restoreArchive({ store: h.store, archiveDir, clock: h.clock, log }, day)
      t.match(await restore(), { rows: 12, inserted: 12, voided: 0 })
      h.clock.advance(1_000)
      t.equal((await voidThem(h.app, ['r-0003'], 'wrong client')).json().voided, 1)
      t.equal(await h.rawCount(day), 11)

      // A successful run before the void no longer lets retention drop the day: it was not rerun since.
      t.match((await retention()).days, [{ date: day, action: 'kept_unsummarised' }])
      h.clock.advance(1_000)
      const rerun = (await runBatch(h.app, { date: day })).json().runs[0]
      t.match(rerun, { records_processed: 11 })
      t.ok(rerun.data_corrections > 0)
      h.clock.advance(1_000)
      t.match((await retention()).days, [{ date: day, action: 'deleted', rows: 11 }], 'the archive holding the voided record still covers the day')

      t.match(await restore(), { rows: 12, inserted: 11, voided: 1, duplicates: 0 }, 'the voided row is skipped')
      t.equal(Number(await h.value("SELECT count(*) FROM usage_events WHERE request_id = 'r-0003'")), 0)
      h.clock.advance(1_000)
      t.match((await runBatch(h.app, { date: day })).json().runs[0], { records_processed: 11, data_corrections: 0 }, 'the rerun after a restore bills what was billed')
      const w = dayWindow(day, TZ)
      t.equal(Number(await h.value('SELECT sum(total_requests) FROM client_daily_usage WHERE usage_date = ?', day)), 11)
      t.ok(w.endMs > w.startMs)
    })
  })
}
