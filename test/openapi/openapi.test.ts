// openapi.yaml is generated, committed and checked: current, a valid OpenAPI 3 document by an
// independent validator, consistent with the auth roles, and the answers of the service conform to it.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { validate } from '@readme/openapi-parser'
import { parse } from 'yaml'
import { Ajv } from 'ajv'
import * as ajvFormatsModule from 'ajv-formats'
import { openApiYaml } from '../../scripts/openapi-document.js'
import { buildTestApp, postEvents, runBatch } from '../helper.js'

const YAML_PATH = new URL('../../openapi.yaml', import.meta.url)
type Operation = {
  security?: Array<Record<string, string[]>>
  responses: Record<string, { content?: Record<string, { schema: object }> }>
}
type Spec = { paths: Record<string, Record<string, Operation>> }

t.test('the committed openapi.yaml is current (npm run openapi)', async (t) => {
  const committed = readFileSync(YAML_PATH, 'utf8')
  t.equal(committed, await openApiYaml(), 'openapi.yaml is stale: run `npm run openapi` and commit it')
})

t.test('openapi.yaml is a valid OpenAPI 3 document (independent validator)', async (t) => {
  const doc = parse(readFileSync(YAML_PATH, 'utf8'))
  t.match(doc.openapi, /^3\./)
  const result = await validate(structuredClone(doc))
  t.same(result.valid ? [] : result.errors, [], 'no validation errors')
  t.equal(result.valid, true)
  // The validator is not vacuous: a broken copy fails.
  const broken = structuredClone(doc)
  delete broken.info
  broken.paths['/usage/clients'].get.responses = 'nope'
  t.equal((await validate(broken)).valid, false)
})

t.test('security and 401/403 follow the route access', async (t) => {
  const spec = parse(readFileSync(YAML_PATH, 'utf8')) as Spec & { components: { securitySchemes: object } }
  t.ok('bearerAuth' in spec.components.securitySchemes)
  let operations = 0
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      operations += 1
      const label = `${method.toUpperCase()} ${path}`
      t.ok(op.responses['500'], `${label} lists 500`)
      if ((op as { requestBody?: unknown }).requestBody) t.ok(op.responses['400'] && op.responses['413'] && op.responses['415'], `${label} lists body errors`)
      if (path.startsWith('/health') || path === '/metrics') {
        t.equal(op.security, undefined, `${label} is public`)
        continue
      }
      t.same(op.security, [{ bearerAuth: [] }], `${label} needs a token`)
      t.ok(op.responses['401'] && op.responses['403'], `${label} lists 401 and 403`)
      t.ok(Object.keys(op.responses).some((s) => s.startsWith('2')), `${label} lists its success`)
    }
  }
  t.ok(operations >= 15)
  const daily = spec.paths['/usage/clients/{id}/daily']!.get!
  t.ok(daily.responses['200']!.content!['text/csv'], 'list endpoints document CSV')
  t.ok(daily.responses['400'], 'and their 400')
})

const addFormats = ((ajvFormatsModule as unknown as { default: { default?: unknown } }).default.default ??
  (ajvFormatsModule as unknown as { default: unknown }).default) as (ajv: Ajv) => Ajv

t.test('answers of the service conform to the document', async (t) => {
  const spec = parse(readFileSync(YAML_PATH, 'utf8')) as Spec
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats(ajv)
  const { app } = await buildTestApp(t, { env: { API_ADMIN_TOKEN: 'adm', API_CLIENT_TOKENS: 'acme=ta' } })
  const admin = { authorization: 'Bearer adm' }
  await postEvents(
    app,
    ['alice', 'bob'].map((u, i) => ({
      request_id: `r${i}`,
      client_org_id: 'acme',
      model: 'm',
      external_user: u,
      input_tokens: 3,
      output_tokens: 4,
      cost_usd: '0.25',
      timestamp: '2026-11-20T10:00:00Z',
    })),
    admin,
  )
  await runBatch(app, { date: '2026-11-20' }, admin)

  const cases: Array<{ method?: 'GET' | 'POST' | 'PUT'; url: string; template: string; payload?: object; headers?: Record<string, string> }> = [
    { url: '/health', template: '/health' },
    { url: '/health/live', template: '/health/live' },
    { url: '/health/ready', template: '/health/ready' },
    { url: '/batch/runs', template: '/batch/runs' },
    { url: '/batch/runs?limit=0', template: '/batch/runs' },
    { url: '/batch/runs/1', template: '/batch/runs/{id}' },
    { url: '/batch/runs/999', template: '/batch/runs/{id}' },
    { url: '/batch/status', template: '/batch/status' },
    { method: 'POST', url: '/batch/run', template: '/batch/run', payload: { date: '2026-11-21' } },
    { method: 'POST', url: '/batch/run', template: '/batch/run', payload: { date: '2099-01-01' } },
    { url: '/usage/clients', template: '/usage/clients' },
    { url: '/usage/clients?from=2026-11-30&to=2026-11-01', template: '/usage/clients' },
    { url: '/usage/clients/acme/daily', template: '/usage/clients/{id}/daily' },
    { url: '/usage/clients/acme/users', template: '/usage/clients/{id}/users' },
    { url: '/usage/clients/acme/models', template: '/usage/clients/{id}/models' },
    { url: '/usage/clients/acme/summary', template: '/usage/clients/{id}/summary' },
    { url: '/usage/clients/nobody/summary?month=2020-01', template: '/usage/clients/{id}/summary' },
    { url: '/usage/clients/acme/today', template: '/usage/clients/{id}/today' },
    // Money as exact decimal text conforms too (the multi-type schema's string branch and pattern).
    { url: '/usage/clients?money=string', template: '/usage/clients' },
    { url: '/usage/clients/acme/daily?money=string', template: '/usage/clients/{id}/daily' },
    { url: '/usage/clients/acme/users?money=string', template: '/usage/clients/{id}/users' },
    { url: '/usage/clients/acme/models?money=string', template: '/usage/clients/{id}/models' },
    { url: '/usage/clients/acme/summary?money=string', template: '/usage/clients/{id}/summary' },
    { url: '/usage/clients/acme/today?money=string', template: '/usage/clients/{id}/today' },
    { url: '/usage/clients/acme/today?money=euros', template: '/usage/clients/{id}/today' },
    { url: '/usage/clients/acme/daily', template: '/usage/clients/{id}/daily', headers: { authorization: 'Bearer ta' } },
    { url: '/usage/clients/other/daily', template: '/usage/clients/{id}/daily', headers: { authorization: 'Bearer ta' } },
    { url: '/usage/clients/acme/daily', template: '/usage/clients/{id}/daily', headers: {} },
    { url: '/clients/acme/pricing', template: '/clients/{id}/pricing' },
    { method: 'PUT', url: '/clients/acme/pricing', template: '/clients/{id}/pricing', payload: { markup_rate: 1.2, effective_from: '2026-12-01' } },
    { method: 'PUT', url: '/clients/acme/pricing', template: '/clients/{id}/pricing', payload: { markup_rate: 1.2, effective_from: '2026-12-01' } },
    { method: 'PUT', url: '/clients/acme/pricing', template: '/clients/{id}/pricing', payload: { markup_rate: 11, effective_from: '2026-12-02' } },
    {
      method: 'POST',
      url: '/usage/events',
      template: '/usage/events',
      payload: { events: [{ request_id: 'x', client_org_id: 'c', model: 'm', input_tokens: 1, output_tokens: 1, cost_usd: '1', timestamp: '2026-11-20T10:00:00' }] },
    },
  ]
  const statuses = new Set<number>()
  for (const c of cases) {
    const method = c.method ?? 'GET'
    const res = await app.inject({ method, url: c.url, headers: c.headers ?? admin, ...(c.payload ? { payload: c.payload } : {}) })
    statuses.add(res.statusCode)
    const op = spec.paths[c.template]?.[method.toLowerCase()]
    const documented = op?.responses[String(res.statusCode)]
    const label = `${method} ${c.url} → ${res.statusCode}`
    if (!t.ok(documented, `${label} is documented`)) continue
    const schema = documented!.content?.['application/json']?.schema
    if (!t.ok(schema, `${label} has a JSON schema`)) continue
    const check = ajv.compile(schema!)
    t.ok(check(res.json()), `${label} conforms${check.errors ? ': ' + ajv.errorsText(check.errors) : ''}`)
  }
  t.same([...statuses].sort(), [200, 201, 202, 400, 401, 403, 404, 409], 'successes and errors alike were checked')
})

t.test('Swagger UI at /docs and the document at /docs/json, public', async (t) => {
  const { app } = await buildTestApp(t, { env: { API_ADMIN_TOKEN: 'adm' } })
  const ui = await app.inject({ url: '/docs' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  const doc = await app.inject({ url: '/docs/json' })
  t.equal(doc.statusCode, 200)
  t.equal(doc.json().openapi, '3.1.0')
  t.same(Object.keys(doc.json().paths), Object.keys((parse(readFileSync(YAML_PATH, 'utf8')) as Spec).paths))
})
