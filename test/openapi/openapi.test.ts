// openapi.yaml is generated, committed and checked: current, a valid OpenAPI 3 document by an
// independent validator, consistent with the auth roles, and the answers of the service conform to it.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { validate } from '@readme/openapi-parser'
import { parse } from 'yaml'
import { Ajv } from 'ajv'
import * as ajvFormatsModule from 'ajv-formats'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { openApiYaml, YAML_1_1 } from '../../scripts/openapi-document.js'
import { OPERATION_IDS } from '../../src/plugins/openapi.js'
import { buildTestApp, postEvents, runBatch } from '../helpers/app.js'
import { event } from '../helpers/events.js'

const ADMIN_TOKEN = 'openapi-test-admin-0b7e'
const ACME_TOKEN = 'openapi-test-acme-61fd'
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

t.test('security and 401/403 follow the route access the auth hook enforces', async (t) => {
  const spec = parse(readFileSync(YAML_PATH, 'utf8')) as Spec & { components: { securitySchemes: object } }
  t.ok('bearerAuth' in spec.components.securitySchemes)
  // What the service does, not what the document says: a request without a token is refused (401)
  // exactly on the routes that need one. Path parameters get a plausible value; the auth hook runs
  // before validation, so a body is not needed to see the 401.
  const { app } = await buildTestApp(t, { env: { API_ADMIN_TOKEN: ADMIN_TOKEN } })
  let operations = 0
  let publicOperations = 0
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      operations += 1
      const label = `${method.toUpperCase()} ${path}`
      t.ok(op.responses['500'], `${label} lists 500`)
      if ((op as { requestBody?: unknown }).requestBody) t.ok(op.responses['400'] && op.responses['413'] && op.responses['415'], `${label} lists body errors`)
      const url = path.replace('{id}', 'acme').replace('{date}', '2026-11-20')
      const anonymous = await app.inject({ method: method.toUpperCase() as 'GET', url })
      t.not(anonymous.statusCode, 404, `${label} is a route of the service`)
      if (anonymous.statusCode !== 401) {
        publicOperations += 1
        t.same(op.security, [], `${label} answers without a token (${anonymous.statusCode}) and says so: security: []`)
        t.notOk(op.responses['401'], `${label} lists no 401`)
        continue
      }
      t.same(op.security, [{ bearerAuth: [] }], `${label} needs a token`)
      t.ok(op.responses['401'] && op.responses['403'], `${label} lists 401 and 403`)
      t.ok(Object.keys(op.responses).some((s) => s.startsWith('2')), `${label} lists its success`)
    }
  }
  t.ok(operations >= 15)
  t.equal(publicOperations, 4, 'the three probes and /metrics are public')
  const daily = spec.paths['/usage/clients/{id}/daily']!.get!
  t.ok(daily.responses['200']!.content!['text/csv'], 'list endpoints document CSV')
  t.ok(daily.responses['400'], 'and their 400')
})

t.test('every operation has a unique operationId a generated client can use', async (t) => {
  const spec = parse(readFileSync(YAML_PATH, 'utf8')) as Spec
  const ids: string[] = []
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const id = (op as { operationId?: string }).operationId
      if (!t.ok(id, `${method.toUpperCase()} ${path} has an operationId (add it to OPERATION_IDS in src/plugins/openapi.ts)`)) continue
      t.match(id, /^[a-z][a-zA-Z]+$/, `${id}: a camelCase identifier`)
      ids.push(id!)
    }
  }
  t.ok(ids.length >= 15)
  t.equal(new Set(ids).size, ids.length, 'no two operations share one')
  t.same(ids.slice().sort(), Object.values(OPERATION_IDS).slice().sort(), 'every name in OPERATION_IDS belongs to a route')
  t.equal((spec.paths['/usage/clients/{id}/daily']!.get as { operationId?: string }).operationId, 'getClientDaily')
  t.equal((spec.paths['/batch/run']!.post as { operationId?: string }).operationId, 'runBatch')
})

t.test('servers, tags with descriptions, an optional body for POST /batch/run', async (t) => {
  const spec = parse(readFileSync(YAML_PATH, 'utf8')) as Spec & {
    servers?: Array<{ url: string; description?: string }>
    tags?: Array<{ name: string; description?: string }>
  }
  t.ok(spec.servers && spec.servers.length > 0, 'servers is not empty')
  t.equal(spec.servers?.[0]?.url, '/', 'first the service that serves the document (Swagger UI calls it)')
  for (const server of spec.servers ?? []) t.ok(server.description, `${server.url} is described`)

  const declared = new Map((spec.tags ?? []).map((tag) => [tag.name, tag.description]))
  const used = new Set<string>()
  for (const methods of Object.values(spec.paths)) {
    for (const op of Object.values(methods)) for (const tag of (op as { tags?: string[] }).tags ?? []) used.add(tag)
  }
  t.ok(used.size >= 5)
  for (const tag of used) t.ok(declared.get(tag), `tag ${tag} is declared with a description`)
  for (const tag of declared.keys()) t.ok(used.has(tag), `declared tag ${tag} is used`)

  const run = spec.paths['/batch/run']!.post as { requestBody?: { required?: boolean } }
  t.equal(run.requestBody?.required, false, 'no body means yesterday')
  t.equal((spec.paths['/clients/{id}/pricing']!.put as { requestBody?: { required?: boolean } }).requestBody?.required, true, 'other bodies stay required')
})

t.test('a YAML 1.1 reader (PyYAML) gets the same values as a YAML 1.2 reader: dates stay strings', async (t) => {
  const text = readFileSync(YAML_PATH, 'utf8')
  const asYaml11 = parse(text, YAML_1_1)
  t.same(asYaml11, parse(text), 'identical under both versions')
  const found: string[] = []
  const walk = (value: unknown, path: string): void => {
    if (value instanceof Date) found.push(path)
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, `${path}/${k}`)
  }
  walk(asYaml11, '')
  t.same(found, [], 'no scalar becomes a date')
  // The check is not vacuous: the document holds dates, and unquoted they become Date objects.
  const dates = text.match(/"\d{4}-\d{2}-\d{2}"/g) ?? []
  t.ok(dates.length >= 20, `${dates.length} quoted dates`)
  t.type(parse(`d: ${dates[0]!.slice(1, -1)}`, YAML_1_1).d, Date)
})

t.test('Redocly CLI (recommended rules) finds no error and no warning', async (t) => {
  const cli = fileURLToPath(new URL('../../node_modules/@redocly/cli/bin/cli.js', import.meta.url))
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const lint = spawnSync(process.execPath, [cli, 'lint', 'openapi.yaml', '--format=json'], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  t.equal(lint.status, 0, 'exit 0', { stderr: lint.stderr.slice(-2000) })
  const report = JSON.parse(lint.stdout) as { totals: { errors: number; warnings: number; ignored: number }; problems: unknown[] }
  t.same(report.problems, [])
  t.same(report.totals, { errors: 0, warnings: 0, ignored: 4 }, 'only the four probes without a 4xx are ignored (.redocly.lint-ignore.yaml)')
})

const addFormats = ((ajvFormatsModule as unknown as { default: { default?: unknown } }).default.default ??
  (ajvFormatsModule as unknown as { default: unknown }).default) as (ajv: Ajv) => Ajv

t.test('answers of the service conform to the document', async (t) => {
  const spec = parse(readFileSync(YAML_PATH, 'utf8')) as Spec
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats(ajv)
  const { app } = await buildTestApp(t, { env: { API_ADMIN_TOKEN: ADMIN_TOKEN, API_CLIENT_TOKENS: `acme=${ACME_TOKEN}` } })
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }
  await postEvents(
    app,
    ['alice', 'bob'].map((u, i) => event({ request_id: `r${i}`, external_user: u, input_tokens: 3, output_tokens: 4, cost_usd: '0.25' })),
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
    { method: 'POST', url: '/batch/run', template: '/batch/run' },
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
    { url: '/usage/clients/acme/daily', template: '/usage/clients/{id}/daily', headers: { authorization: `Bearer ${ACME_TOKEN}` } },
    { url: '/usage/clients/other/daily', template: '/usage/clients/{id}/daily', headers: { authorization: `Bearer ${ACME_TOKEN}` } },
    { url: '/usage/clients/acme/daily', template: '/usage/clients/{id}/daily', headers: {} },
    { url: '/clients/acme/pricing', template: '/clients/{id}/pricing' },
    { method: 'PUT', url: '/clients/acme/pricing', template: '/clients/{id}/pricing', payload: { markup_rate: 1.2, effective_from: '2026-12-01' } },
    { method: 'PUT', url: '/clients/acme/pricing', template: '/clients/{id}/pricing', payload: { markup_rate: 1.2, effective_from: '2026-12-01' } },
    { method: 'PUT', url: '/clients/acme/pricing', template: '/clients/{id}/pricing', payload: { markup_rate: 11, effective_from: '2026-12-02' } },
    {
      method: 'POST',
      url: '/usage/events',
      template: '/usage/events',
      payload: { events: [event({ timestamp: '2026-11-20T10:00:00' })] },
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
  const { app } = await buildTestApp(t, { env: { API_ADMIN_TOKEN: ADMIN_TOKEN } })
  const ui = await app.inject({ url: '/docs' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)
  const doc = await app.inject({ url: '/docs/json' })
  t.equal(doc.statusCode, 200)
  t.equal(doc.json().openapi, '3.1.0')
  t.same(Object.keys(doc.json().paths), Object.keys((parse(readFileSync(YAML_PATH, 'utf8')) as Spec).paths))
})
