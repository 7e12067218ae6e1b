// deploy/kubernetes-postgres.yaml, checked offline as deploy/kubernetes.yaml is (test/ops/deploy.test.ts):
// valid objects, the restricted Pod Security Standard, and what PostgreSQL mode promises: several
// replicas rolled one at a time, a disruption budget, no volume, DATABASE_URL from the Secret.
import t from 'tap'
import { ConfigError, EnvSchema, loadConfig } from '../../src/config.js'
import { checkExposure } from '../../src/server.js'
import { manifestsOf, one, podOf, realTokens, restrictedViolations, schemaProblems, type Doc } from '../helpers/kubernetes.js'

const manifests = () => manifestsOf('deploy/kubernetes-postgres.yaml')

function plainEnv(container: Doc): Record<string, string> {
  return Object.fromEntries(container.env.filter((e: Doc) => 'value' in e).map((e: Doc) => [e.name, String(e.value)]))
}

t.test('kubernetes-postgres.yaml: every object valid against the Kubernetes API schema', async (t) => {
  const docs = manifests()
  t.same(docs.map((d) => d.kind).sort(), ['Deployment', 'PodDisruptionBudget', 'Secret', 'Service'])
  for (const d of docs) t.equal(schemaProblems(d), undefined, `${d.kind} ${d.metadata?.name}`)
  const broken = structuredClone(one(docs, 'PodDisruptionBudget'))
  broken.spec.minAvailable = { one: 1 }
  t.ok(schemaProblems(broken), 'the budget validator is not vacuous')
})

t.test('kubernetes-postgres.yaml: restricted pod, no volume at all', async (t) => {
  const docs = manifests()
  const pod = podOf(docs)
  t.same(restrictedViolations(pod), [], 'no violation of the restricted standard')
  t.equal(pod.automountServiceAccountToken, false)
  t.same(pod.volumes ?? [], [], 'no volume: the data lives in PostgreSQL')
  for (const c of pod.containers) {
    t.same(c.volumeMounts ?? [], [], `${c.name} mounts nothing`)
    t.equal(c.securityContext.readOnlyRootFilesystem, true, 'and writes nothing locally')
  }
  t.equal(docs.filter((d) => d.kind === 'PersistentVolumeClaim').length, 0, 'no claim')
})

t.test('kubernetes-postgres.yaml: 2+ replicas, rolled one at a time, a disruption budget that leaves one serving', async (t) => {
  const docs = manifests()
  const deployment = one(docs, 'Deployment')
  t.ok(deployment.spec.replicas >= 2, `${deployment.spec.replicas} replicas`)
  t.equal(deployment.spec.strategy.type, 'RollingUpdate')
  t.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a new pod is ready before an old one goes')
  const budget = one(docs, 'PodDisruptionBudget')
  t.same(budget.spec.selector.matchLabels, deployment.spec.template.metadata.labels, 'the budget covers the pods')
  t.ok(budget.spec.minAvailable >= 1 && budget.spec.minAvailable < deployment.spec.replicas, 'one stays up, one may be drained')
  const service = one(docs, 'Service')
  t.same(service.spec.selector, deployment.spec.template.metadata.labels)
  const spread = deployment.spec.template.spec.topologySpreadConstraints ?? []
  t.ok(spread.some((c: Doc) => c.topologyKey === 'kubernetes.io/hostname'), 'replicas spread over nodes')
})

t.test('kubernetes-postgres.yaml: DATABASE_URL comes from the Secret and selects PostgreSQL; the placeholders stop the server', async (t) => {
  const docs = manifests()
  const secret = one(docs, 'Secret')
  const container = podOf(docs).containers[0]
  const env = plainEnv(container)
  const known = new Set(Object.keys(EnvSchema.properties))
  for (const name of [...Object.keys(env), ...Object.keys(secret.stringData)]) t.ok(known.has(name), `${name} is a configuration variable`)
  t.notOk('DATABASE_URL' in env, 'the URL (with its password) is not written in the Deployment')
  t.notOk('SQLITE_PATH' in env, 'no SQLite file in PostgreSQL mode')
  t.ok(secret.stringData.DATABASE_URL, 'the Secret holds DATABASE_URL')
  t.same(container.envFrom, [{ secretRef: { name: secret.metadata.name } }])

  const tokens = realTokens(Object.fromEntries(Object.keys(secret.stringData).filter((k) => k.startsWith('API_')).map((k) => [k, ''])))
  const config = loadConfig({ ...env, ...tokens, DATABASE_URL: secret.stringData.DATABASE_URL })
  t.match(config.DATABASE_URL, /^postgres:\/\/[^@]+@[^/]+\/\w+$/, 'the shipped URL has the shape the service takes')
  t.equal(config.HOST, '0.0.0.0')
  t.equal(checkExposure(config), undefined)
  t.throws(() => loadConfig({ ...env, ...secret.stringData }), ConfigError, 'the placeholder tokens are refused at start')
})
