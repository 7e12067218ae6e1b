// The JSON body parser: the same answers as Fastify's own (secure-json-parse), the poisoning scan
// skipped only where no poisoned key can be; over HTTP, a poisoned ingest body is a 400 and stores
// nothing, in every spelling of the keys.
import t from 'tap'
import { parse as secureJsonParse } from 'secure-json-parse'
import { parseJsonBody } from '../src/plugins/json-body.js'
import { buildTestApp } from './helpers/app.js'

const POISONING = { protoAction: 'error', constructorAction: 'error' } as const

/** Both parsers' outcome: the value, or that it threw. */
function outcome(parse: (text: string) => unknown, text: string): { value?: unknown; threw?: true } {
  try {
    return { value: parse(text) }
  } catch {
    return { threw: true }
  }
}

/** Every spelling of `name` with the characters at the positions in `mask` written as \u00XX escapes. */
function spellings(name: string): string[] {
  const out: string[] = []
  for (let mask = 0; mask < 1 << name.length; mask += name.length > 9 ? 37 : 1) {
    out.push(
      [...name]
        .map((c, i) => (mask & (1 << i) ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c))
        .join(''),
    )
  }
  return out
}

const record = {
  request_id: 'r-1',
  client_org_id: 'acme',
  model: 'openai/gpt-4o',
  input_tokens: 1,
  output_tokens: 2,
  cost_usd: '0.001',
  timestamp: '2026-11-27T10:00:00Z',
}

t.test('same answers as secure-json-parse, poisoned or not', async (t) => {
  const texts = [
    JSON.stringify({ events: [record] }),
    '\uFEFF' + JSON.stringify({ events: [record] }),
    JSON.stringify({ events: [{ ...record, model: 'constructor' }] }),
    JSON.stringify({ events: [{ ...record, model: '__proto__' }] }),
    JSON.stringify({ events: [{ ...record, external_user: 'zo\u00eb \u{1F600}' }] }),
    '{"events":[{"external_user":"zo\\u00eb"}]}',
    '{"a":1,"__proto__":{"x":1}}',
    '{"a":{"constructor":{"prototype":{"x":1}}}}',
    '{"a":{"constructor":{"x":1}}}',
    '{"a":[1,2,{"\\u005f_proto__":{}}]}',
    '{"\\u0063onstructor":{"prototype":{}}}',
    '[1,2,3]',
    '"text"',
    'null',
    '{"a":',
    '{bad json}',
  ]
  for (const name of ['__proto__', 'constructor']) {
    for (const spelled of spellings(name)) {
      texts.push(name === '__proto__' ? `{"events":[],"${spelled}":{"polluted":true}}` : `{"events":[{"${spelled}":{"prototype":{"polluted":true}}}]}`)
    }
  }
  t.ok(texts.length > 500, `${texts.length} texts`)
  let refused = 0
  for (const text of texts) {
    const expected = outcome((s) => secureJsonParse(s, POISONING), text)
    t.same(outcome(parseJsonBody, text), expected, text.slice(0, 80))
    if (expected.threw) refused += 1
  }
  t.ok(refused > 500, `${refused} refused alike`)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing polluted')
})

t.test('over HTTP: poisoned bodies are 400 and store nothing; clean ones are stored', async (t) => {
  const { app, db } = await buildTestApp(t)
  const post = (payload: string) => app.inject({ method: 'POST', url: '/usage/events', headers: { 'content-type': 'application/json' }, payload })
  const poisoned = [
    `{"events":[${JSON.stringify(record)}],"__proto__":{"x":1}}`,
    `{"events":[${JSON.stringify(record).slice(0, -1)},"\\u005f\\u005fproto__":{"x":1}}]}`,
    `{"events":[${JSON.stringify(record).slice(0, -1)},"constructor":{"prototype":{"x":1}}}]}`,
  ]
  for (const body of poisoned) {
    const r = await post(body)
    t.equal(r.statusCode, 400, body)
    t.equal(r.json().error, 'Bad Request')
  }
  t.equal((await post('')).statusCode, 400, 'empty body')
  t.equal((await post('{"events":[')).statusCode, 400, 'malformed body')
  t.equal(db.$client.prepare('SELECT count(*) FROM usage_events').pluck().get(), 0, 'nothing stored')

  const clean = await post('\uFEFF' + JSON.stringify({ events: [record, { ...record, request_id: 'r-2', model: 'constructor' }] }))
  t.equal(clean.statusCode, 200)
  t.same(clean.json(), { accepted: 2, duplicates: 0 })
})
