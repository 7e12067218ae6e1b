// No cluster and no Docker engine here (kubectl validates only against a live API server): the
// manifests are checked offline against the Kubernetes API schemas (kubernetes-models), the
// restricted Pod Security Standard and the app itself — probes hit real routes on the port it
// listens on, every variable is one the app knows, the placeholder Secret stops the server, the
// volume is the documented formula over re-measured figures. The Dockerfile and the Grafana
// dashboard are checked against the app too.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { measureStorage } from '../../bench/lib/storage.js'
import { ConfigError, EnvSchema, loadConfig } from '../../src/config.js'
import { checkExposure } from '../../src/server.js'
import { METRIC_NAMES } from '../../src/metrics.js'
import { fixedClock } from '../../src/clock.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { buildTestApp, DEFAULT_NOW_MS, postEvents, runBatch } from '../helpers/app.js'
import { event } from '../helpers/events.js'
import { parsePrometheusText } from '../helpers/prometheus.js'
import { pingCheckedSource, startInfluxPing } from '../helpers/sources.js'
import { manifestsOf, one, podOf, realTokens, restrictedViolations, schemaProblems, type Doc } from '../helpers/kubernetes.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const read = (path: string) => readFileSync(root + path, 'utf8')
const manifests = () => manifestsOf('deploy/kubernetes.yaml')

/** Kubernetes quantity (binary or decimal suffix) → bytes. */
function quantityBytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity)
  if (!m) throw new Error(`not a quantity: ${quantity}`)
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1
  return Number(m[1]) * unit
}

t.test('kubernetes.yaml: every object valid against the Kubernetes API schema', async (t) => {
  const docs = manifests()
  t.same(docs.map((d) => d.kind).sort(), ['Deployment', 'PersistentVolumeClaim', 'Secret', 'Service'])
  for (const d of docs) t.equal(schemaProblems(d), undefined, `${d.kind} ${d.metadata?.name}`)
  // The validator is not vacuous: types and required fields are checked.
  const broken = structuredClone(one(docs, 'Deployment'))
  broken.spec.replicas = 'one'
  delete broken.spec.template.spec.containers[0].name
  broken.spec.template.spec.containers[0].livenessProbe.httpGet.port = { name: 'http' }
  const problems = schemaProblems(broken) ?? ''
  t.match(problems, /replicas must be integer/)
  t.match(problems, /containers\/0 must have required property '?name/)
  t.match(problems, /httpGet\/port/)
})

t.test('kubernetes.yaml: the pod meets the restricted Pod Security Standard, with no API credentials', async (t) => {
  const pod = podOf(manifests())
  t.same(restrictedViolations(pod), [], 'no violation')
  t.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault')
  t.equal(pod.automountServiceAccountToken, false, 'the service never calls the Kubernetes API')
  t.equal(pod.containers.length, 1, 'one container')
  for (const c of pod.containers) t.equal(c.securityContext.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem`)

  // The checker is not vacuous: each weakening is caught.
  const weakenings: Array<[string, (p: Doc) => void, RegExp]> = [
    ['no seccomp profile', (p) => delete p.securityContext.seccompProfile, /seccompProfile/],
    ['Unconfined seccomp', (p) => (p.securityContext.seccompProfile = { type: 'Unconfined' }), /seccompProfile/],
    ['privilege escalation', (p) => (p.containers[0].securityContext.allowPrivilegeEscalation = true), /allowPrivilegeEscalation/],
    ['root', (p) => (p.containers[0].securityContext.runAsUser = 0), /runAsUser 0/],
    ['runAsNonRoot unset', (p) => {
      delete p.securityContext.runAsNonRoot
      delete p.containers[0].securityContext.runAsNonRoot
    }, /runAsNonRoot/],
    ['a capability', (p) => (p.containers[0].securityContext.capabilities.add = ['NET_ADMIN']), /NET_ADMIN/],
    ['capabilities kept', (p) => (p.containers[0].securityContext.capabilities.drop = []), /drop ALL/],
    ['hostPath', (p) => p.volumes.push({ name: 'host', hostPath: { path: '/var' } }), /hostPath/],
    ['hostNetwork', (p) => (p.hostNetwork = true), /hostNetwork/],
    ['privileged', (p) => (p.containers[0].securityContext.privileged = true), /privileged/],
    ['hostPort', (p) => (p.containers[0].ports[0].hostPort = 8080), /hostPort/],
  ]
  for (const [what, weaken, expected] of weakenings) {
    const copy = structuredClone(pod)
    weaken(copy)
    t.match(restrictedViolations(copy).join('; '), expected, `${what} is a violation`)
  }
})

t.test('kubernetes.yaml: the placeholder Secret stops the server at start, naming each token', async (t) => {
  const docs = manifests()
  const secret = one(docs, 'Secret')
  const container = podOf(docs).containers[0]
  const env: Record<string, string> = Object.fromEntries(container.env.filter((e: Doc) => 'value' in e).map((e: Doc) => [e.name, String(e.value)]))
  const apiTokens = ['API_ADMIN_TOKEN', 'API_CLIENT_TOKENS', 'API_INGEST_TOKEN', 'API_READ_TOKEN']
  t.same(Object.keys(secret.stringData).sort(), apiTokens, 'the Secret holds the four API token variables')
  for (const [key, value] of Object.entries(secret.stringData as Record<string, string>)) {
    t.throws(() => loadConfig({ ...env, [key]: value }), ConfigError, `${key} as shipped is refused`)
  }
  let message = ''
  try {
    loadConfig({ ...env, ...secret.stringData })
  } catch (error) {
    message = (error as Error).message
  }
  for (const key of apiTokens) t.match(message, new RegExp(`^\\s+${key}: .*(placeholder|at least 16)`, 'm'), `${key} is named`)

  // The real process: it exits at once instead of listening (on loopback here, not the pod's 0.0.0.0).
  const dir = t.testdir({})
  const started = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, ...env, ...secret.stringData, HOST: '127.0.0.1', PORT: '0', SQLITE_PATH: join(dir, 'usage.db') },
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.equal(started.status, 1, 'exit 1')
  const output = started.stdout + started.stderr
  for (const key of apiTokens) t.match(output, key)
  t.match(output, 'openssl rand -hex 32', 'says how to make a token')
  t.notMatch(output, /Server listening/)
  for (const value of Object.values(secret.stringData as Record<string, string>)) t.notMatch(output, value, 'no placeholder value is echoed')
})

t.test('kubernetes.yaml: the volume is the documented formula over re-measured bytes per row', async (t) => {
  const docs = manifests()
  const pvc = one(docs, 'PersistentVolumeClaim')
  const figures = Object.fromEntries(
    String(pvc.metadata.annotations['usage-batch/sizing'])
      .split(/\s+/)
      .map((pair) => pair.split('='))
      .map(([k, v]) => [k, Number(v)]),
  ) as Record<string, number>
  const names = ['raw_rows_per_day', 'raw_bytes_per_row', 'raw_retention_days', 'summary_rows_per_day', 'summary_bytes_per_row', 'summary_days', 'headroom']
  t.same(Object.keys(figures).sort(), names.slice().sort())
  for (const name of names) t.ok(figures[name]! > 0, `${name} is a positive number`)

  // Today and yesterday wait for their run before retention may delete anything older.
  const bytes =
    (figures.raw_rows_per_day! * figures.raw_bytes_per_row! * (figures.raw_retention_days! + 2) +
      figures.summary_rows_per_day! * figures.summary_bytes_per_row! * figures.summary_days!) *
    figures.headroom!
  const requested = quantityBytes(pvc.spec.resources.requests.storage)
  t.ok(requested >= bytes, `claim ${pvc.spec.resources.requests.storage} holds the formula's ${(bytes / 1e9).toFixed(1)} GB`)
  t.ok(requested < bytes + 2 ** 30, 'and is that figure rounded up to a whole GiB, not a guess')

  const env: Record<string, string> = Object.fromEntries(podOf(docs).containers[0].env.filter((e: Doc) => 'value' in e).map((e: Doc) => [e.name, String(e.value)]))
  t.equal(figures.raw_retention_days, loadConfig({ ...env, ...realTokens(one(docs, 'Secret').stringData) }).RAW_RETENTION_DAYS, 'sized for the retention the pod runs with')

  // The documented bytes per row still hold for today's schema and indexes: a small day through
  // the service's own ingest and batch (npm run bench:storage measures a bigger one).
  const measured = await measureStorage({ events: 20_000, clients: 40, usersPerClient: 25, seed: 7 })
  t.equal(measured.raw_rows, 20_000)
  const within = (value: number, documented: number, tolerance: number) => Math.abs(value - documented) / documented <= tolerance
  t.ok(within(measured.raw_bytes_per_row, figures.raw_bytes_per_row!, 0.1), `raw: measured ${measured.raw_bytes_per_row} B/row vs documented ${figures.raw_bytes_per_row}`)
  t.ok(within(measured.summary_bytes_per_row, figures.summary_bytes_per_row!, 0.1), `summaries: measured ${measured.summary_bytes_per_row} B/row vs documented ${figures.summary_bytes_per_row}`)

  const operations = read('docs/operations.md')
  for (const figure of [`${figures.raw_bytes_per_row} bytes`, `${figures.summary_bytes_per_row} bytes`, pvc.spec.resources.requests.storage]) {
    t.ok(operations.includes(figure), `docs/operations.md states ${figure}`)
  }
})

t.test('kubernetes.yaml: one Recreate replica whose probes hit real routes on the listening port', async (t) => {
  const docs = manifests()
  t.equal(docs.length, 4, 'Deployment, PersistentVolumeClaim, Secret, Service')
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
  t.ok(Object.keys(env).length >= 5, 'the container sets its configuration')
  for (const name of Object.keys(env)) t.ok(known.has(name), `env ${name} is a configuration variable`)

  // The port the service listens on, as the app computes it from this environment.
  const secret = one(docs, 'Secret')
  t.ok(Object.keys(secret.stringData).length > 0, 'the Secret holds keys')
  for (const name of Object.keys(secret.stringData)) t.ok(known.has(name), `secret key ${name} is a configuration variable`)
  const config = loadConfig({ ...env, ...realTokens(secret.stringData) })
  t.equal(config.HOST, '0.0.0.0')
  t.equal(checkExposure(config), undefined, 'with the Secret the server agrees to listen on 0.0.0.0')
  t.equal(config.SQLITE_PATH, '/data/usage.db')

  const ports = new Map<string | number, number>(container.ports.flatMap((p: Doc) => [[p.name, p.containerPort], [p.containerPort, p.containerPort]]))
  t.equal(ports.get('http'), config.PORT, 'container port is the port the app listens on')

  const { app } = await buildTestApp(t)
  await runBatch(app, { from: '2026-11-20', to: '2026-11-26' })
  for (const [probe, path] of [
    ['startupProbe', '/health/live'],
    ['livenessProbe', '/health/live'],
    ['readinessProbe', '/health/ready'],
  ] as const) {
    const get = container[probe].httpGet
    t.equal(get.path, path, `${probe} path`)
    t.equal(ports.get(get.port), config.PORT, `${probe} port resolves to ${config.PORT}`)
    t.ok(app.hasRoute({ method: 'GET', url: get.path }), `${get.path} is a route of the app`)
    t.equal((await app.inject({ method: 'GET', url: get.path })).statusCode, 200, `${get.path} answers 200 on a healthy app`)
  }
  const startup = container.startupProbe
  t.ok(startup.periodSeconds * startup.failureThreshold >= 120, 'start-up (migrations before listening) may take minutes')
  t.notOk(container.livenessProbe.initialDelaySeconds, 'liveness needs no delay of its own: the startup probe gates it')

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
  t.match(dockerfile, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m, 'Node 24, the LTS line')
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

t.test('one Node major everywhere: the image, the README setup, CI; engines admits it', async (t) => {
  const major = Number(/^ARG NODE_IMAGE=node:(\d+)-/m.exec(read('Dockerfile'))?.[1])
  t.equal(major, 24)
  const { IMAGE_NODE_MAJOR, MIN_NODE_MAJOR } = await import('../../scripts/supported-node.mjs')
  t.equal(IMAGE_NODE_MAJOR, major, 'the npm scripts install that major on an older Node')
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts
  for (const name of ['start', 'test']) t.match(scripts[name], /^node scripts\/supported-node\.mjs /, `npm ${name} runs on a supported Node`)
  const ci = read('.ci/run')
  t.ok(ci.indexOf('setsid npm start') < ci.indexOf('. scripts/use-node-24.sh'), "CI runs the README's npm start on the machine's own Node first")
  t.match(ci, /^USAGE_BATCH_EXACT_NODE=1 \. scripts\/use-node-24\.sh$/m, 'then everything else on exactly that major')
  t.match(ci, new RegExp(`!== "${major}"`), 'and checks it')
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node
  const floor = /^>=(\d+)\.(\d+)$/.exec(engines)
  t.ok(floor, `engines is a floor (${engines})`)
  t.ok(Number(floor![1]) <= major, `engines ${engines} admits Node ${major}`)
  t.equal(Number(floor![1]), MIN_NODE_MAJOR, 'the floor the npm scripts accept without installing Node 24')
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
    source: (store) => pingCheckedSource(createSqliteSource({ store, clock: fixedClock(DEFAULT_NOW_MS) }), influx.url),
  })
  await postEvents(app, [
    event({ cost_usd: '0.01', timestamp: '2026-11-26T10:00:00Z' }),
  ])
  await runBatch(app, { date: '2026-11-26' })
  await app.inject({ method: 'GET', url: '/health' })
  const families = parsePrometheusText((await app.inject({ method: 'GET', url: '/metrics' })).body)
  const exposed = new Set<string>()
  for (const family of families.values()) for (const s of family.samples) exposed.add(s.name)

  const used = new Set<string>()
  t.ok(dashboard.panels.length > 0, 'the dashboard has panels')
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
  t.ok(names.includes('UsageBatchRunFailed') && names.includes('UsageBatchBehind'), 'the contract names them (docs/operations.md#alerts)')
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

t.test('docs/operations.md documents each alert: when it fires and what to do', async (t) => {
  const operations = read('docs/operations.md')
  const from = operations.indexOf('\n## Alerts\n')
  t.ok(from >= 0, 'it has an Alerts section')
  const section = operations.slice(from, operations.indexOf('\n## ', from + 5))
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
