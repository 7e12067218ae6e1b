// POST /usage/events refuses what cannot be billed faithfully (SPEC §3, §9): ill-formed Unicode,
// NUL in ids, a contradicting total_tokens, timestamps before 2000, non-JSON bodies; a request_id
// stored or repeated with other content is a 409; nothing is ever stored by a refused request.
// One suite, two stores: every case runs on a SQLite file and with DATABASE_URL on PostgreSQL.
import t from 'tap'
import { postEvents } from '../helpers/app.js'
import { event, type EventInput } from '../helpers/events.js'
import { storeKinds } from '../helpers/store-apps.js'

const good = event()

type Errors = Array<{ index: number; field: string; message: string }>

for (const kind of await storeKinds(t)) {
  t.test(kind.name, async (t) => {
    t.test('ill-formed Unicode in any string field, and NUL in ids, are refused naming record and field', async (t) => {
      const { app, value, query, digest } = await kind.build(t)
      const before = await digest()
      const cases: Array<[keyof EventInput, string, RegExp]> = [
        ['request_id', 'r-\ud800', /ill-formed Unicode/],
        ['client_org_id', 'surr\ud800', /ill-formed Unicode/],
        ['model', 'model-\udfff-x', /ill-formed Unicode/],
        ['external_user', 'user\udc00', /ill-formed Unicode/],
        ['cost_usd', '0.1\ud800', /./],
        ['timestamp', '2026-11-20T10:00:00Z\ud800', /./],
        ['request_id', 'r\u0000', /NUL/],
        ['client_org_id', 'acme\u0000', /NUL/],
        ['model', '\u0000m', /NUL/],
        ['external_user', 'al\u0000ice', /NUL/],
      ]
      for (const [field, value, message] of cases) {
        // JSON.stringify writes a lone surrogate as a \ud800 escape: the wire form a producer sends.
        const res = await postEvents(app, [{ ...good, request_id: 'ok-0' }, { ...good, request_id: 'ok-1', [field]: value }])
        t.equal(res.statusCode, 400, `${field}=${JSON.stringify(value)}`)
        const errors = res.json().errors as Errors
        t.ok(errors.some((e) => e.index === 1 && e.field === field && message.test(e.message)), `${field}: ${JSON.stringify(errors)}`)
        t.notOk(errors.some((e) => e.index === 0), 'the good record is not blamed')
        t.match(res.json().message, /^1 invalid record\(s\); nothing was stored|^invalid body/)
      }
      // A surrogate pair (an emoji) is well-formed and welcome; NUL outside ids is left to other rules.
      const emoji = await postEvents(app, [{ ...good, request_id: 'emoji-😀', client_org_id: 'acme-😀', external_user: 'ü-😀' }])
      t.equal(emoji.statusCode, 200, emoji.body)
      t.equal(await value("SELECT client_org_id FROM usage_events WHERE request_id = 'emoji-😀'"), 'acme-😀')
      await query("DELETE FROM usage_events WHERE request_id = 'emoji-😀'")
      t.equal(await digest(), before, 'no refused request stored anything')
    })

    t.test('total_tokens must equal input + output when given; timestamps before 2000 are refused', async (t) => {
      const { app, value } = await kind.build(t)
      const mismatch = await postEvents(app, [{ ...good, total_tokens: 16 }])
      t.equal(mismatch.statusCode, 400)
      t.match(mismatch.json().errors, [{ index: 0, field: 'total_tokens', message: /must equal input_tokens \+ output_tokens \(15\)/ }])

      for (const timestamp of ['1970-01-01T00:00:00Z', '1000-06-01T12:00:00Z', '0001-01-01T00:00:00Z', '1999-12-31T23:59:59.999Z', '2000-01-01T00:30:00+01:00']) {
        const res = await postEvents(app, [{ ...good, timestamp }])
        t.equal(res.statusCode, 400, timestamp)
        t.match(res.json().errors, [{ index: 0, field: 'timestamp', message: /before 2000-01-01T00:00:00Z/ }], timestamp)
      }
      t.equal(Number(await value('SELECT count(*) FROM usage_events')), 0, 'nothing stored')

      const fine = await postEvents(app, [
        { ...good, request_id: 'edge', timestamp: '2000-01-01T00:00:00Z' },
        { ...good, request_id: 'west', timestamp: '1999-12-31T23:30:00-01:00' },
        { ...good, request_id: 'total', total_tokens: 15 },
      ])
      t.equal(fine.statusCode, 200, fine.body)
      t.same(fine.json(), { accepted: 3, duplicates: 0 })
    })

    t.test('a whitespace-only external_user is stored as unknown, like an absent one', async (t) => {
      const { app, query } = await kind.build(t)
      const res = await postEvents(app, [
        { ...good, request_id: 'spaces', external_user: '   ' },
        { ...good, request_id: 'tab', external_user: '\t' },
        { ...good, request_id: 'absent', external_user: undefined },
      ])
      t.equal(res.statusCode, 200)
      t.same(await query('SELECT DISTINCT external_user FROM usage_events'), [{ external_user: 'unknown' }])
      const again = await postEvents(app, [{ ...good, request_id: 'spaces', external_user: null }])
      t.same(again.json(), { accepted: 0, duplicates: 1 }, 'blank and absent are the same content')
    })

    t.test('error counts count records, not listed errors', async (t) => {
      const { app } = await kind.build(t)
      const events = Array.from({ length: 200 }, (_, i) => ({ ...good, request_id: `bulk-${i}`, ...(i < 150 ? { input_tokens: -1 } : {}) }))
      const res = await postEvents(app, events)
      t.equal(res.statusCode, 400)
      t.match(res.json().message, /^150 invalid record\(s\); nothing was stored/)
      t.equal(res.json().errors.length, 100, 'at most 100 listed')

      const mixed = Array.from({ length: 150 }, (_, i) => ({ ...good, request_id: `mixed-${i}`, ...(i % 2 ? { input_tokens: -1 } : { total_tokens: 1 }) }))
      const both = await postEvents(app, mixed)
      t.match(both.json().message, /^150 invalid record\(s\)/, 'schema and rule errors together')
    })

    t.test('non-JSON bodies are 415, and store nothing', async (t) => {
      const { app, value } = await kind.build(t)
      const body = JSON.stringify({ events: [good] })
      for (const contentType of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'application/xml', 'application/jsonx', 'multipart/form-data; boundary=x']) {
        const res = await app.inject({ method: 'POST', url: '/usage/events', payload: body, headers: { 'content-type': contentType } })
        t.equal(res.statusCode, 415, contentType)
        t.match(res.json(), { statusCode: 415, error: 'Unsupported Media Type', message: /application\/json/ })
      }
      const noType = await app.inject({ method: 'POST', url: '/usage/events', payload: body, headers: { 'content-type': '' } })
      t.equal(noType.statusCode, 415, 'no content type')
      for (const url of ['/batch/run', '/usage/events/void']) {
        const res = await app.inject({ method: 'POST', url, payload: '{}', headers: { 'content-type': 'text/plain' } })
        t.equal(res.statusCode, 415, url)
      }
      const put = await app.inject({ method: 'PUT', url: '/usage/exchange-rates/2026-11-20', payload: '{"rate":"4"}', headers: { 'content-type': 'text/plain' } })
      t.equal(put.statusCode, 415)
      t.equal(Number(await value('SELECT count(*) FROM usage_events')), 0)
      t.equal(Number(await value('SELECT count(*) FROM daily_exchange_rates')), 0)
    })

    t.test('a request_id stored with other content is a 409 listing the records; the same content is a duplicate', async (t) => {
      const { app, digest } = await kind.build(t)
      t.same((await postEvents(app, [good])).json(), { accepted: 1, duplicates: 0 })
      const stored = await digest()

      // The same content, written differently: another offset for the same instant, float noise that
      // rounds to the same nano-USD, total_tokens spelled out.
      const same = await postEvents(app, [{ ...good, timestamp: '2026-11-20T11:00:00.000+01:00', cost_usd: 0.1000000000001, total_tokens: 15 }])
      t.equal(same.statusCode, 200)
      t.same(same.json(), { accepted: 0, duplicates: 1 })

      const variants: Array<[Partial<EventInput>, string]> = [
        [{ cost_usd: '0.2' }, 'cost_usd'],
        [{ client_org_id: 'globex' }, 'client_org_id'],
        [{ model: 'm2' }, 'model'],
        [{ external_user: 'bob' }, 'external_user'],
        [{ input_tokens: 11 }, 'input_tokens'],
        [{ timestamp: '2026-11-20T10:00:00.001Z' }, 'timestamp'],
      ]
      for (const [change, field] of variants) {
        const res = await postEvents(app, [{ ...good, request_id: 'new-1' }, { ...good, ...change }, { ...good, request_id: 'new-2' }])
        t.equal(res.statusCode, 409, field)
        t.match(res.json(), { statusCode: 409, error: 'Conflict', message: /^1 record\(s\) conflict/ })
        t.match(res.json().errors, [{ index: 1, field: 'request_id', message: new RegExp(`already stored with different .*${field}`) }], field)
        t.equal(res.json().errors.length, 1)
      }
      t.equal(await digest(), stored, 'no record of a refused request was stored, the new ones included')
    })

    t.test('one request with a request_id twice: the same content is one record, other content a 409', async (t) => {
      const { app, digest } = await kind.build(t)
      const same = await postEvents(app, [good, { ...good, timestamp: '2026-11-20T11:00:00+01:00' }, { ...good, request_id: 'r-2' }])
      t.same(same.json(), { accepted: 2, duplicates: 1 })

      const stored = await digest()
      const res = await postEvents(app, [{ ...good, request_id: 'x-0' }, { ...good, request_id: 'dup', cost_usd: '1' }, { ...good, request_id: 'x-2' }, { ...good, request_id: 'dup', cost_usd: '2' }])
      t.equal(res.statusCode, 409)
      t.same(
        res.json().errors.map((e: { index: number }) => e.index),
        [1, 3],
        'both conflicting records are listed',
      )
      t.match(res.json().errors[1].message, /repeats record 1 with different cost_usd/)
      t.equal(await digest(), stored, 'nothing stored')
    })
  })
}
