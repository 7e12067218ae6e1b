// kubectl and Docker are not available here: the manifests, the Dockerfile and the Grafana
// dashboard are checked against the app itself — probes hit real routes on the port it listens
// on, every configured variable is one the app knows, every metric a panel queries is exposed.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'
import { EnvSchema, loadConfig } from '../../src/config.js'
import { checkExposure } from '../../src/server.js'
import { METRIC_NAMES } from '../../src/metrics.js'
import { fixedClock } from '../../src/clock.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch } from '../helper.js'
import { parsePrometheusText } from './prometheus.js'
import { pingCheckedSource, startInfluxPing } from './fixtures.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const read = (path: string) => readFileSync(root + path, 'utf8')

type Doc = any

function manifests(): Doc[] {
  const docs = parseAllDocuments(read('deploy/kubernetes.yaml'))
  for (const d of docs) if (d.errors.length > 0) throw new Error(`kubernetes.yaml: ${d.errors.map((e) => e.message).join('; ')}`)
  return docs.map((d) => d.toJS() as Doc).filter(Boolean)
}

function one(docs: Doc[], kind: string): Doc {
  const found = docs.filter((d) => d.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return found[0]
}

t.test('kubernetes.yaml: one Recreate replica whose probes hit real routes on the listening port', async (t) => {
  const docs = manifests()
  t.same(docs.map((d) => d.kind).sort(), ['Deployment', 'PersistentVolumeClaim', 'Secret', 'Service'])
  for (const d of docs) t.ok(d.apiVersion && d.metadata?.name, `${d.kind} has apiVersion and name`)

  const deployment = one(docs, 'Deployment')
  t.equal(deployment.spec.replicas, 1, 'SQLite has one writer')
  t.equal(deployment.spec.strategy.type, 'Recreate', 'old pod stops before the new one opens the file')
  const pod = deployment.spec.template.spec
  t.same(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels)
  t.equal(pod.securityContext.runAsNonRoot, true)
  t.equal(pod.containers.length, 1)
  const container = pod.containers[0]

  const env: Record<string, string> = Object.fromEntries(container.env.filter((e: Doc) => 'value' in e).map((e: Doc) => [e.name, String(e.value)]))
  const known = new Set(Object.keys(EnvSchema.properties))
  for (const name of Object.keys(env)) t.ok(known.has(name), `env ${name} is a configuration variable`)

  // The port the service listens on, as the app computes it from this environment.
  const secret = one(docs, 'Secret')
  for (const name of Object.keys(secret.stringData)) t.ok(known.has(name), `secret key ${name} is a configuration variable`)
  const config = loadConfig({ ...env, ...secret.stringData })
  t.equal(config.HOST, '0.0.0.0')
  t.equal(checkExposure(config), undefined, 'with the Secret the server agrees to listen on 0.0.0.0')
  t.equal(config.SQLITE_PATH, '/data/usage.db')

  const ports = new Map<string | number, number>(container.ports.flatMap((p: Doc) => [[p.name, p.containerPort], [p.containerPort, p.containerPort]]))
  t.equal(ports.get('http'), config.PORT, 'container port is the port the app listens on')

  const { app } = await buildTestApp(t)
  await runBatch(app, { from: '2026-11-20', to: '2026-11-26' })
  for (const [probe, path] of [
    ['livenessProbe', '/health/live'],
    ['readinessProbe', '/health/ready'],
  ] as const) {
    const get = container[probe].httpGet
    t.equal(get.path, path, `${probe} path`)
    t.equal(ports.get(get.port), config.PORT, `${probe} port resolves to ${config.PORT}`)
    t.ok(app.hasRoute({ method: 'GET', url: get.path }), `${get.path} is a route of the app`)
    t.equal((await app.inject({ method: 'GET', url: get.path })).statusCode, 200, `${get.path} answers 200 on a healthy app`)
  }

  t.same(container.envFrom, [{ secretRef: { name: secret.metadata.name } }], 'tokens and credentials come from the Secret')
  const pvc = one(docs, 'PersistentVolumeClaim')
  const dataVolume = pod.volumes.find((v: Doc) => v.persistentVolumeClaim?.claimName === pvc.metadata.name)
  t.ok(dataVolume, 'the pod mounts the claim')
  const mount = container.volumeMounts.find((m: Doc) => m.name === dataVolume.name)
  t.equal(mount.mountPath, '/data')
  t.ok(config.SQLITE_PATH.startsWith(`${mount.mountPath}/`), 'the SQLite file lives on the claim')

  const service = one(docs, 'Service')
  t.same(service.spec.selector, deployment.spec.template.metadata.labels, 'the Service selects the pod')
  t.equal(ports.get(service.spec.ports[0].targetPort), config.PORT, 'the Service targets the listening port')
})

t.test('Dockerfile: multi-stage, production dependencies only, non-root, /data, HEALTHCHECK on /health/live', async (t) => {
  const dockerfile = read('Dockerfile')
  const stages = dockerfile.match(/^FROM\s+\S+/gm) ?? []
  t.ok(stages.length >= 2, 'multi-stage')
  t.match(dockerfile, /ARG NODE_IMAGE=node:22-bookworm-slim/)
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  t.match(runtime, /^USER node$/m, 'runs as the non-root node user')
  t.notMatch(runtime, /^USER root$/m)
  t.match(runtime, /^VOLUME \["\/data"\]$/m)
  t.match(runtime, /^EXPOSE 8080$/m)
  t.match(runtime, /ENV .*HOST=0\.0\.0\.0/)
  t.match(runtime, /ENV .*SQLITE_PATH=\/data\/usage\.db/)
  t.match(runtime, /HEALTHCHECK[\s\S]*\/health\/live/)
  t.match(runtime, /^CMD \["node", "dist\/src\/server\.js"\]$/m)
  t.match(dockerfile, /npm ci --omit=dev/)
  t.notMatch(runtime.replace(/^#.*$/gm, ''), /curl|wget/, 'slim images have neither')
  const ignore = read('.dockerignore').split('\n')
  for (const entry of ['node_modules', 'dist', '.git', 'data', '*.db']) t.ok(ignore.includes(entry), `.dockerignore has ${entry}`)
})

/** Metric names a PromQL expression reads: identifiers that are not functions, keywords or labels. */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '')
  const names: string[] = []
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice(m.index! + m[0].length).trimStart()
    if (after.startsWith('(')) continue
    if (['and', 'or', 'unless', 'offset', 'bool'].includes(m[0])) continue
    if (/^\d/.test(m[0])) continue
    names.push(m[0])
  }
  return names
}

t.test('grafana-dashboard.json: every metric a panel queries is exposed by /metrics after a run', async (t) => {
  const dashboard = JSON.parse(read('deploy/grafana-dashboard.json')) as {
    title: string
    uid: string
    schemaVersion: number
    panels: Array<{ id: number; title: string; type: string; gridPos: object; targets: Array<{ expr: string; refId: string }> }>
  }
  t.ok(dashboard.title && dashboard.uid && dashboard.schemaVersion >= 30, 'a Grafana dashboard')
  t.ok(dashboard.panels.length > 0)
  t.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids unique')

  // InfluxDB-first (its /ping served locally), so the InfluxDB-only metrics are exposed too.
  const influx = await startInfluxPing()
  t.teardown(() => influx.close())
  const { app } = await buildTestApp(t, {
    env: { INFLUXDB_FIRST_ENABLED: 'true', INFLUXDB_URL: influx.url },
    source: (db) => pingCheckedSource(createSqliteSource({ db, clock: fixedClock(DEFAULT_NOW_MS), path: db.$client.name }), influx.url),
  })
  await postEvents(app, [
    { request_id: 'r1', client_org_id: 'acme', model: 'm1', input_tokens: 1, output_tokens: 1, cost_usd: '0.01', timestamp: '2026-11-26T10:00:00Z' },
  ])
  await runBatch(app, { date: '2026-11-26' })
  await app.inject({ method: 'GET', url: '/health' })
  const families = parsePrometheusText((await app.inject({ method: 'GET', url: '/metrics' })).body)
  const exposed = new Set<string>()
  for (const family of families.values()) for (const s of family.samples) exposed.add(s.name)

  const used = new Set<string>()
  for (const panel of dashboard.panels) {
    t.ok(panel.gridPos && panel.type, `panel ${panel.title} has a type and position`)
    t.ok(panel.targets.length > 0, `panel ${panel.title} has a query`)
    for (const target of panel.targets) {
      const names = metricNamesIn(target.expr)
      t.ok(names.length > 0, `${panel.title}: ${target.expr} reads a metric`)
      for (const name of names) {
        used.add(name.replace(/_(bucket|sum|count)$/, ''))
        t.ok(exposed.has(name), `${name} (${panel.title}) is exposed by /metrics`)
      }
    }
  }
  for (const name of Object.values(METRIC_NAMES)) t.ok(used.has(name), `the dashboard charts ${name}`)
})

type RuleFile = { groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string; for?: string; labels?: Record<string, string> }> }> }
const alertRules = () => (parse(read('deploy/prometheus-rules.yaml')) as RuleFile).groups.flatMap((g) => g.rules).filter((r) => r.alert)

t.test('prometheus-rules.yaml: the contract alerts, a severity on each; the PrometheusRule carries exactly its groups', async (t) => {
  const rules = alertRules()
  const names = rules.map((r) => r.alert)
  t.ok(names.includes('UsageBatchRunFailed') && names.includes('UsageBatchBehind'), 'SPEC §9 names them')
  t.equal(new Set(names).size, names.length, 'alert names unique')
  for (const rule of rules) t.match(rule.labels?.severity, /^(critical|warning)$/, `${rule.alert} has a severity`)
  const operator = parse(read('deploy/prometheus-rule.yaml')) as { apiVersion: string; kind: string; metadata: { name: string }; spec: RuleFile }
  t.equal(operator.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(operator.kind, 'PrometheusRule')
  t.same(operator.spec.groups, (parse(read('deploy/prometheus-rules.yaml')) as RuleFile).groups, 'deploy/prometheus-rule.yaml spec.groups = deploy/prometheus-rules.yaml groups')
})

t.test('grafana-dashboard.json charts each alert with the alert\'s own expression', async (t) => {
  const dashboard = JSON.parse(read('deploy/grafana-dashboard.json')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> }
  const exprs = new Map(dashboard.panels.flatMap((p) => p.targets.map((target) => [target.expr, p.title] as const)))
  // The scrape alert reads `up`, which Prometheus writes, not the service; every other alert has its panel.
  const charted = alertRules().filter((r) => r.alert !== 'UsageBatchDown')
  t.ok(charted.length >= 5)
  t.ok(charted.some((r) => r.alert === 'UsageBatchRunFailed') && charted.some((r) => r.alert === 'UsageBatchBehind'))
  for (const rule of charted) {
    const signal = rule.expr.replace(/\s*(>|==)\s*0$/, '')
    t.not(signal, rule.expr, `${rule.alert}: a comparison with 0 to strip`)
    t.ok(exprs.has(signal), `${rule.alert}: a panel queries ${signal}`)
    t.match(exprs.get(signal), new RegExp(`alert ${rule.alert}`), 'and its title names the alert')
  }
})

t.test('README documents each alert: when it fires and what to do', async (t) => {
  const readme = read('README.md')
  const from = readme.indexOf('## Deployment and operations')
  const section = readme.slice(from, readme.indexOf('\n## ', from + 5))
  const rules = alertRules()
  t.ok(rules.length > 0)
  for (const rule of rules) {
    const row = section.split('\n').find((line) => line.startsWith(`| \`${rule.alert}\` |`))
    t.ok(row, `${rule.alert} has a row in the alert table`)
    t.equal(row?.split(' | ').length, 4, `${rule.alert}: severity, when it fires, what to do`)
    t.match(row, `| ${rule.labels!.severity} |`, `${rule.alert}: the severity of the rule`)
  }
})

t.test('servicemonitor.yaml scrapes /metrics on the Service of kubernetes.yaml, under the job name the rules expect', async (t) => {
  const monitor = parse(read('deploy/servicemonitor.yaml')) as {
    apiVersion: string
    kind: string
    spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }> }
  }
  t.equal(monitor.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(monitor.kind, 'ServiceMonitor')
  const service = one(manifests(), 'Service')
  for (const [label, value] of Object.entries(monitor.spec.selector.matchLabels)) t.equal(service.metadata.labels?.[label], value, `the Service carries ${label}=${value}`)
  t.ok(Object.keys(monitor.spec.selector.matchLabels).length > 0, 'it selects by at least one label')
  t.equal(monitor.spec.endpoints.length, 1)
  const endpoint = monitor.spec.endpoints[0]!
  t.ok(service.spec.ports.some((p: Doc) => p.name === endpoint.port), `the Service has a port named ${endpoint.port}`)
  t.equal(endpoint.path, '/metrics')
  const { app } = await buildTestApp(t)
  t.equal((await app.inject({ method: 'GET', url: endpoint.path })).statusCode, 200)
  // The Operator names the job after the Service unless told otherwise (spec.jobLabel).
  const down = alertRules().find((r) => r.alert === 'UsageBatchDown')!
  t.match(down.expr, `up{job="${service.metadata.name}"}`)
  t.notOk('jobLabel' in monitor.spec)
})

t.test('metricNamesIn reads PromQL as intended', async (t) => {
  t.same(metricNamesIn('histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{route!="x"}[5m])))'), [
    'http_request_duration_seconds_bucket',
  ])
  t.same(metricNamesIn('(time() - usage_batch_last_success_date_timestamp_seconds) / 86400'), ['usage_batch_last_success_date_timestamp_seconds'])
  t.same(metricNamesIn('a_total and on (x) b_total'), ['a_total', 'b_total'])
  t.same(metricNamesIn('increase(max without (instance, pod) (usage_batch_runs_total{status="failed"})[1h:1m])'), ['usage_batch_runs_total'])
})
