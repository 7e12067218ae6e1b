// A seeded, bounded fuzz over every route of the app and every field it reads: path parameters, query
// strings, JSON bodies, content-type, accept and authorization headers. Only 2xx and 4xx answers,
// never a stack trace, and a refused request changes no row of any table (databaseDigest).
// FUZZ_SEED and FUZZ_REQUESTS reproduce or widen a run; a failure names the seed and the request.
import t from 'tap'
import type { App } from '../src/app.js'
import { buildTestApp, databaseDigest, postEvents, runBatch } from './helper.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20261201)
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 600)
const ADMIN = 'fuzz-admin-token-0123456789'

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  return { next, int, pick, chance: (p: number) => next() < p }
}
type Rng = ReturnType<typeof prng>

const NASTY_TEXT = [
  '',
  ' ',
  'acme',
  'globex',
  '2026-11-20',
  '2026-11',
  '2026-02-30',
  '0000-01-01',
  '0001-01-01',
  '0099-12-31',
  '1999-12-31',
  '9999-12-31',
  '9999-12',
  '10000-01-01',
  '+10000-01-01',
  '2026-11-20T10:00:00',
  '2026-11-20T10:00:00Z',
  '1970-01-01T00:00:00Z',
  '1000-01-01T00:00:00+01:00',
  '-1',
  '0',
  '1e309',
  '-0.000000001',
  'NaN',
  'Infinity',
  '0x10',
  '99999999999999999999999',
  'true',
  'null',
  "'; DROP TABLE usage_events; --",
  '" OR 1=1 --',
  '../../etc/passwd',
  '=HYPERLINK("http://x")',
  '@SUM(1)',
  'a\u0000b',
  'surr\ud800',
  '\udfff',
  'emoji 😀',
  'żółć',
  '\r\n',
  '\t',
  'x'.repeat(201),
  'y'.repeat(5000),
]

function nastyValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 1 ? 6 : 9)) {
    case 0:
      return rng.pick(NASTY_TEXT)
    case 1:
      return rng.pick([0, -1, 1, 1.5, 2 ** 53, 2 ** 63, -(2 ** 31), 1e308, Number.MIN_VALUE, 0.1 + 0.2])
    case 2:
      return rng.pick([true, false, null])
    case 3:
      return rng.pick(NASTY_TEXT) + rng.pick(NASTY_TEXT)
    case 4:
      return String(rng.int(10_000))
    case 5:
      return rng.int(2_000_000_000)
    case 6:
      return Array.from({ length: rng.int(4) }, () => nastyValue(rng, depth + 1))
    case 7:
      return { [rng.pick(['a', 'date', 'events', '__proto__', 'constructor'])]: nastyValue(rng, depth + 1) }
    default:
      return []
  }
}

const DATES = ['0000-01-01', '0001-01-01', '0099-12-31', '1999-12-31', '2000-01-01', '9999-12-31', '10000-01-01', '2026-02-30', '2026-13-01', '2026-11-20', '2026-1-1', '+002026-11-20', '2026-11-20T00:00:00Z']
const MONTHS = ['0000-01', '0099-12', '1999-12', '2000-01', '9999-12', '10000-01', '2026-00', '2026-13', '2026-11', '2026-1']
const TIMESTAMPS = ['1970-01-01T00:00:00Z', '1000-06-01T00:00:00Z', '0001-01-01T00:00:00Z', '2026-11-20T10:00:00', '2026-11-20T25:00:00Z', '9999-12-31T23:59:59Z', '2026-11-20T10:00:00+25:00', '2026-11-20T10:00:00.123456789-01:00']

/** Half the time a value hostile to what the field means (dates to a date field…), else anything. */
function valueFor(rng: Rng, field: string): unknown {
  if (rng.chance(0.5)) {
    if (/^(from|to|date|effective_from)$/.test(field)) return rng.pick(DATES)
    if (field === 'month') return rng.pick(MONTHS)
    if (field === 'timestamp') return rng.pick(TIMESTAMPS)
    if (/tokens$/.test(field)) return rng.pick([-1, 1.5, 2 ** 53, 1e12 + 1, '5', null])
    if (/cost_usd|rate|markup_rate/.test(field)) return rng.pick(['1e400', '-0.1', 'NaN', '0.0000000005', '999999999999', 1e308, '4.0341', '0', '10.0000001'])
    if (/request_id|client_org_id|model|external_user|id|reason|note/.test(field)) return rng.pick(['', ' ', 'a\u0000b', 'surr\ud800', '\udfff', 'x'.repeat(201), 'x'.repeat(501), '=1+1', 'ok'])
    if (field === 'limit') return rng.pick([0, -1, 501, 1.5, 'x'])
    if (field === 'cursor') return rng.pick(['', 'e30', 'eyJiZWZvcmUiOi0xfQ', '!!!', Buffer.from('{"before":1e400}').toString('base64url')])
  }
  return nastyValue(rng)
}

/** Percent-encodes text byte by byte; a lone surrogate becomes its (invalid) three UTF-8 bytes. */
function encodeText(rng: Rng, text: string): string {
  if (rng.chance(0.05)) return text.replace(/[#?&/]/g, '') // sometimes raw, odd characters and all
  let out = ''
  for (const ch of text) {
    const code = ch.codePointAt(0)!
    if (/[A-Za-z0-9\-._~]/.test(ch)) out += ch
    else if (code >= 0xd800 && code <= 0xdfff) out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')
    else out += [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('')
  }
  return rng.chance(0.03) ? `${out}%` : rng.chance(0.03) ? `${out}%G1` : out
}

interface Operation {
  method: string
  path: string
  /** Query parameter names the route documents. */
  query: string[]
  /** A valid body to mutate, when the route takes one. */
  body?: () => unknown
}

const goodEvent = (rng: Rng) => ({
  request_id: `fz-${rng.int(40)}`,
  client_org_id: rng.pick(['acme', 'globex', 'initech']),
  model: rng.pick(['m1', 'm2']),
  external_user: rng.pick(['alice', 'bob', undefined]),
  input_tokens: rng.int(1000),
  output_tokens: rng.int(1000),
  cost_usd: rng.pick(['0.000000150', '0.3', 0.1, '12.5']),
  timestamp: `2026-11-${String(10 + rng.int(15)).padStart(2, '0')}T10:00:00Z`,
})

const VALID_BODIES: Record<string, (rng: Rng) => unknown> = {
  'POST /usage/events': (rng) => ({ events: Array.from({ length: 1 + rng.int(3) }, () => goodEvent(rng)) }),
  'POST /usage/events/void': (rng) => ({ request_ids: [`fz-${rng.int(40)}`], reason: 'fuzz' }),
  'POST /batch/run': (rng) => rng.pick([{ date: '2026-11-20' }, { from: '2026-11-18', to: '2026-11-20' }, {}]),
  'PUT /usage/exchange-rates/{date}': () => ({ rate: '4.0341', note: 'fuzz' }),
  'PUT /clients/{id}/pricing': (rng) => ({ markup_rate: '1.25', effective_from: `2027-0${1 + rng.int(9)}-01` }),
}

/** A valid body with fields dropped, replaced by hostile values, or added; or the body itself replaced. */
function mutate(rng: Rng, value: unknown, depth = 0): unknown {
  if (depth > 3 || rng.chance(0.1)) return rng.chance(0.5) ? nastyValue(rng) : value
  if (Array.isArray(value)) return value.map((v) => (rng.chance(0.3) ? mutate(rng, v, depth + 1) : v))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) }
    for (const key of Object.keys(out)) {
      const roll = rng.next()
      if (roll < 0.1) delete out[key]
      else if (roll < 0.3) out[key] = valueFor(rng, key)
      else if (roll < 0.45) out[key] = mutate(rng, out[key], depth + 1)
    }
    if (rng.chance(0.1)) out[rng.pick(['extra', 'api_key', 'date', 'total_tokens', 'reason'])] = nastyValue(rng)
    return out
  }
  return rng.chance(0.6) ? nastyValue(rng) : value
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/JSON',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  'application/xml',
  '',
  ';;;',
  'application/json; charset=latin1',
]
const ACCEPTS = [undefined, 'text/csv', 'text/csv;q=0, application/json', 'application/json;q=0.1, text/csv', '*/*', 'text/*', 'image/png', ';q=', 'text/csv;q=abc', ',,,', 'x/y;q=1, */*;q=0']

function operationsOf(app: App): Operation[] {
  const spec = app.swagger() as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }> }>> }
  const ops: Operation[] = []
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const key = `${method.toUpperCase()} ${path}`
      const body = VALID_BODIES[key]
      ops.push({ method: method.toUpperCase(), path, query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name), ...(body ? { body: () => body } : {}) } as Operation)
    }
  }
  // Routes outside the document: Swagger UI, and methods or paths the app does not serve.
  ops.push(
    { method: 'GET', path: '/docs', query: [] },
    { method: 'GET', path: '/docs/json', query: [] },
    { method: 'DELETE', path: '/usage/events', query: [] },
    { method: 'PATCH', path: '/clients/{id}/pricing', query: [] },
    { method: 'GET', path: '/usage/clients/{id}', query: ['from'] },
  )
  return ops
}

function buildRequest(rng: Rng, op: Operation) {
  const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (rng.chance(0.3)) return name === 'date' ? '2026-11-20' : name === 'id' && op.path.startsWith('/batch') ? '1' : 'acme'
    return encodeText(rng, String(valueFor(rng, name)))
  })
  const params: string[] = []
  for (const name of op.query) {
    if (rng.chance(0.5)) continue
    const value = rng.chance(0.3) ? rng.pick(['2026-11-01', '2026-11-30', 'csv', 'json', 'true', '10', 'failed']) : String(valueFor(rng, name))
    params.push(`${name}=${encodeText(rng, value)}`)
    if (rng.chance(0.05)) params.push(`${name}=${encodeText(rng, rng.pick(NASTY_TEXT))}`)
  }
  if (rng.chance(0.1)) params.push(`${encodeText(rng, rng.pick(['id', 'client_org_id', 'x', '__proto__']))}=${encodeText(rng, rng.pick(NASTY_TEXT))}`)
  const headers: Record<string, string> = {}
  const auth = rng.next()
  if (auth < 0.85) headers.authorization = `Bearer ${ADMIN}`
  else if (auth < 0.92) headers.authorization = rng.pick(['Bearer ', 'Basic abc', `Bearer ${ADMIN}x`, 'Bearer \u00ff'])
  const accept = rng.pick(ACCEPTS)
  if (accept !== undefined) headers.accept = accept
  let payload: string | undefined
  const valid = VALID_BODIES[`${op.method} ${op.path}`]
  if (valid || rng.chance(0.1)) {
    const roll = rng.next()
    if (roll < 0.08) payload = rng.pick(['{', '{"events":', 'null', '[]', '""', '{"a":1}{', '\u0000', 'not json at all'])
    else if (roll < 0.12) payload = JSON.stringify(nastyValue(rng))
    else payload = JSON.stringify(valid ? mutate(rng, valid(rng)) : nastyValue(rng)) ?? 'null'
    headers['content-type'] = rng.chance(0.75) ? 'application/json' : rng.pick(CONTENT_TYPES)
  }
  const url = `${path}${params.length ? `?${params.join('&')}` : ''}`
  return { method: op.method as 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH', url, headers, payload }
}

async function settled(app: App) {
  // POST /batch/run without wait answers 202 and runs on: let it finish before the next digest.
  for (let i = 0; (await app.services.batch.running()).length > 0 && i < 500; i++) await new Promise((r) => setTimeout(r, 10))
}

t.test(`every route and field, seed ${SEED}: only 2xx/4xx, and refused input changes nothing`, async (t) => {
  const { app, db } = await buildTestApp(t, { env: { API_ADMIN_TOKEN: ADMIN } })
  const auth = { authorization: `Bearer ${ADMIN}` }
  t.equal((await postEvents(app, Array.from({ length: 6 }, (_, i) => ({ ...goodEvent(prng(i)), request_id: `seed-${i}` })), auth)).statusCode, 200)
  t.equal((await runBatch(app, { date: '2026-11-20' }, auth)).statusCode, 200)

  const rng = prng(SEED)
  const ops = operationsOf(app)
  t.ok(ops.length >= 20, `operations from the OpenAPI document: ${ops.length}`)
  const hits = new Map<string, number>()
  const statuses = new Map<number, number>()
  let refused = 0
  let failures = 0
  for (let n = 0; n < REQUESTS && failures < 5; n++) {
    const op = ops[n % ops.length]!
    const request = buildRequest(rng, op)
    const before = databaseDigest(db)
    const res = await app.inject(request)
    await settled(app)
    hits.set(`${op.method} ${op.path}`, (hits.get(`${op.method} ${op.path}`) ?? 0) + 1)
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    const where = `seed ${SEED}, request ${n}: ${request.method} ${request.url} ${JSON.stringify(request.headers)} ${request.payload?.slice(0, 300) ?? ''}`
    const problems: string[] = []
    if (res.statusCode >= 500 || res.statusCode < 200 || (res.statusCode >= 300 && res.statusCode < 400)) problems.push(`status ${res.statusCode}: ${res.body.slice(0, 300)}`)
    if (/\n\s+at .*\.(ts|js):\d+/.test(res.body)) problems.push('a stack trace in the body')
    if (res.statusCode >= 400) {
      refused += 1
      if (databaseDigest(db) !== before) problems.push('a refused request changed the database')
      if (!/application\/json/.test(String(res.headers['content-type']))) problems.push(`error body not JSON: ${res.headers['content-type']}`)
    }
    if (problems.length > 0) {
      failures += 1
      t.fail(`${problems.join('; ')} — ${where}`)
    }
  }
  t.equal(failures, 0, `no failure in ${REQUESTS} requests (seed ${SEED}); statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
  for (const op of ops) t.ok((hits.get(`${op.method} ${op.path}`) ?? 0) >= 5, `${op.method} ${op.path} fuzzed ${hits.get(`${op.method} ${op.path}`) ?? 0} times`)
  t.ok(refused > REQUESTS / 4, `refused ${refused} of ${REQUESTS}: the fuzz reaches validation`)
  t.ok([...statuses.keys()].some((s) => s >= 200 && s < 300), 'some requests pass, so checks past validation run too')
})
