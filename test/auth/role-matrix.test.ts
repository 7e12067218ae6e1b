// Every token kind × every route → the expected 2xx/401/403 (docs/api.md#authentication), client isolation by every
// route and parameter, the loopback-only default and AUTH_DISABLED.
import t from 'tap'
import { buildTestApp, postEvents, runBatch } from '../helpers/app.js'
import { event } from '../helpers/events.js'
import { checkExposure } from '../../src/server.js'
import { loadConfig } from '../../src/config.js'
import type { App } from '../../src/app.js'

const TOKENS = {
  admin: 'admin-token-1-4f9d2c7a',
  read: 'read-token-2-8b1e6f30',
  ingest: 'ingest-token-3-c5a7d912',
  clientA: 'acme-token-4-27e0b8f4',
  clientB: 'globex-token-5-9d3c1a6e',
}
const ENV = {
  API_ADMIN_TOKEN: TOKENS.admin,
  API_READ_TOKEN: TOKENS.read,
  API_INGEST_TOKEN: TOKENS.ingest,
  API_CLIENT_TOKENS: `acme=${TOKENS.clientA},globex=${TOKENS.clientB}`,
}

type Kind = 'admin' | 'read' | 'ingest' | 'clientA' | 'clientB' | 'none' | 'wrong'
const KINDS: Kind[] = ['admin', 'read', 'ingest', 'clientA', 'clientB', 'none', 'wrong']
type Access = 'public' | 'admin' | 'read' | 'ingest' | 'clientA'

function headersFor(kind: Kind): Record<string, string> {
  if (kind === 'none') return {}
  if (kind === 'wrong') return { authorization: 'Bearer not-a-token' }
  return { authorization: `Bearer ${TOKENS[kind]}` }
}

/** Who may call a route of each access kind; everyone else with a valid token gets 403, without one 401. */
const ALLOWED: Record<Access, Kind[]> = {
  public: KINDS,
  admin: ['admin'],
  read: ['admin', 'read'],
  ingest: ['admin', 'ingest'],
  clientA: ['admin', 'read', 'clientA'],
}

let seq = 0
interface RouteCase {
  method: 'GET' | 'POST' | 'PUT'
  url: string
  access: Access
  payload?: () => object
}

/** Every route of the service. The test below also checks this list against the routes registered. */
const ROUTES: RouteCase[] = [
  { method: 'GET', url: '/health/live', access: 'public' },
  { method: 'GET', url: '/health/ready', access: 'public' },
  { method: 'GET', url: '/health', access: 'public' },
  { method: 'GET', url: '/metrics', access: 'public' },
  { method: 'POST', url: '/batch/run?wait=true', access: 'admin', payload: () => ({ date: '2026-11-20' }) },
  { method: 'GET', url: '/batch/runs', access: 'read' },
  { method: 'GET', url: '/batch/runs/1', access: 'read' },
  { method: 'GET', url: '/batch/status', access: 'read' },
  { method: 'GET', url: '/batch/storage', access: 'read' },
  { method: 'GET', url: '/usage/exchange-rates', access: 'read' },
  { method: 'PUT', url: '/usage/exchange-rates/2026-11-20', access: 'admin', payload: () => ({ rate: '4.0341', note: 'matrix' }) },
  {
    method: 'POST',
    url: '/usage/events',
    access: 'ingest',
    payload: () => ({
      events: [event({ request_id: `matrix-${++seq}` })],
    }),
  },
  {
    method: 'POST',
    url: '/usage/events/void',
    access: 'admin',
    payload: () => ({ request_ids: [`matrix-void-${++seq}`], reason: 'role matrix' }),
  },
  { method: 'GET', url: '/usage/events/voided', access: 'read' },
  { method: 'GET', url: '/usage/clients', access: 'read' },
  { method: 'GET', url: '/usage/clients?format=csv', access: 'read' },
  { method: 'GET', url: '/usage/clients/acme/daily', access: 'clientA' },
  { method: 'GET', url: '/usage/clients/acme/daily?format=csv', access: 'clientA' },
  { method: 'GET', url: '/usage/clients/acme/users', access: 'clientA' },
  { method: 'GET', url: '/usage/clients/acme/models', access: 'clientA' },
  { method: 'GET', url: '/usage/clients/acme/summary', access: 'clientA' },
  { method: 'GET', url: '/usage/clients/acme/today', access: 'clientA' },
  { method: 'GET', url: '/clients/acme/pricing', access: 'read' },
  {
    method: 'PUT',
    url: '/clients/acme/pricing',
    access: 'admin',
    // A fresh effective date per call: a repeated one would answer 409.
    payload: () => ({ markup_rate: '1.4', effective_from: new Date(Date.UTC(2030, 0, 1 + ++seq)).toISOString().slice(0, 10) }),
  },
  { method: 'GET', url: '/docs', access: 'public' },
  { method: 'GET', url: '/docs/json', access: 'public' },
]

async function seed(app: App) {
  await postEvents(
    app,
    ['acme', 'globex'].map((c) => event({ request_id: `seed-${c}`, client_org_id: c, cost_usd: '1' })),
    { authorization: `Bearer ${TOKENS.admin}` },
  )
  const run = await runBatch(app, { date: '2026-11-20' }, { authorization: `Bearer ${TOKENS.admin}` })
  if (run.statusCode !== 200) throw new Error(run.body)
}

t.test('every token kind × every route', async (t) => {
  const { app } = await buildTestApp(t, { env: ENV })
  await seed(app)

  // The matrix covers every operation of the OpenAPI document (i.e. every documented route).
  const listed = new Set(ROUTES.map((r) => `${r.method} ${r.url.replace(/\?.*$/, '').replace('/acme/', '/{id}/').replace(/\/1$/, '/{id}').replace(/\/\d{4}-\d{2}-\d{2}$/, '/{date}')}`))
  const spec = app.swagger() as { paths: Record<string, Record<string, unknown>> }
  t.ok(Object.keys(spec.paths).length >= 20, 'the document lists the routes')
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const method of Object.keys(methods)) t.ok(listed.has(`${method.toUpperCase()} ${path}`), `${method.toUpperCase()} ${path} is in the matrix`)
  }

  for (const route of ROUTES) {
    for (const kind of KINDS) {
      const res = await app.inject({
        method: route.method,
        url: route.url,
        headers: headersFor(kind),
        ...(route.payload ? { payload: route.payload() } : {}),
      })
      const label = `${kind} ${route.method} ${route.url}`
      if (ALLOWED[route.access].includes(kind)) {
        t.ok(res.statusCode >= 200 && res.statusCode < 300, `${label} → ${res.statusCode}`)
      } else if (kind === 'none' || kind === 'wrong') {
        t.equal(res.statusCode, 401, label)
        t.match(res.json(), { statusCode: 401, error: 'Unauthorized' })
      } else {
        t.equal(res.statusCode, 403, label)
        t.match(res.json(), { statusCode: 403, error: 'Forbidden' })
      }
    }
  }
})

t.test('a client token cannot read another client by any route or parameter', async (t) => {
  const { app } = await buildTestApp(t, { env: ENV })
  await seed(app)
  const asA = { authorization: `Bearer ${TOKENS.clientA}` }
  for (const path of ['daily', 'users', 'models', 'summary', 'today']) {
    for (const url of [
      `/usage/clients/globex/${path}`,
      `/usage/clients/globex/${path}?id=acme`,
      `/usage/clients/globex/${path}?client_org_id=acme`,
      `/usage/clients/ACME/${path}`,
      `/usage/clients/acme%2F..%2Fglobex/${path}`,
      `/usage/clients/acme%20/${path}`,
      `/usage/clients/%61cme/../globex/${path}`,
    ]) {
      const res = await app.inject({ url, headers: asA })
      t.not(res.statusCode, 200, url)
      t.ok([403, 404].includes(res.statusCode), `${url} → ${res.statusCode}`)
      t.notMatch(res.body, /globex.*total_tokens/, 'no data of the other client')
    }
  }
  // Percent-encoding of its own id still names its own client.
  t.equal((await app.inject({ url: '/usage/clients/%61cme/daily', headers: asA })).statusCode, 200)
  for (const url of ['/usage/clients', '/usage/clients?format=csv', '/batch/runs', '/batch/runs/1', '/batch/status', '/clients/acme/pricing', '/clients/globex/pricing']) {
    t.equal((await app.inject({ url, headers: asA })).statusCode, 403, url)
  }
  t.equal((await app.inject({ method: 'POST', url: '/batch/run', payload: {}, headers: asA })).statusCode, 403)
  t.equal(
    (await postEvents(app, [event({ cost_usd: 1 })], asA)).statusCode,
    403,
    'a client token cannot ingest, not even for itself',
  )
  // Header forms: the scheme is case-insensitive; anything else is no token.
  t.equal((await app.inject({ url: '/usage/clients/acme/daily', headers: { authorization: `bearer ${TOKENS.clientA}` } })).statusCode, 200)
  for (const authorization of [`Basic ${TOKENS.clientA}`, TOKENS.clientA, `Bearer ${TOKENS.clientA}x`, `Bearer ${TOKENS.clientA.slice(0, -1)}`, 'Bearer ']) {
    t.equal((await app.inject({ url: '/usage/clients/acme/daily', headers: { authorization } })).statusCode, 401, authorization)
  }
})

t.test('no token configured: auth is off, and only loopback may listen', async (t) => {
  const { app } = await buildTestApp(t)
  t.equal((await app.inject({ url: '/usage/clients' })).statusCode, 200, 'auth off')
  t.equal((await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: '2026-11-20' } })).statusCode, 200)

  const base = { SQLITE_PATH: ':memory:' }
  for (const HOST of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) {
    t.equal(checkExposure(loadConfig({ ...base, HOST })), undefined, `${HOST} without tokens`)
  }
  t.equal(checkExposure(loadConfig(base)), undefined, 'the default HOST is loopback')
  for (const HOST of ['0.0.0.0', '::', '10.0.0.5', 'example.internal']) {
    t.match(checkExposure(loadConfig({ ...base, HOST })), /refusing to listen on .* without API tokens/, `${HOST} refused`)
    t.equal(checkExposure(loadConfig({ ...base, HOST, API_READ_TOKEN: 'read-token-6c0f4b2e' })), undefined, `${HOST} with a token`)
    t.equal(checkExposure(loadConfig({ ...base, HOST, AUTH_DISABLED: 'true' })), undefined, `${HOST} with AUTH_DISABLED`)
  }
})

t.test('AUTH_DISABLED=true turns the tokens off', async (t) => {
  const { app } = await buildTestApp(t, { env: { ...ENV, AUTH_DISABLED: 'true' } })
  t.equal((await app.inject({ url: '/usage/clients/globex/daily' })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: '/clients/x/pricing', payload: { markup_rate: 2, effective_from: '2026-01-01' } })).statusCode, 201)
})
