// Offline checks of Kubernetes manifests shared by the deploy tests: the objects of a file, each
// validated against the Kubernetes API schema (kubernetes-models), and the restricted Pod Security
// Standard as Kubernetes' PodSecurity admission checks it.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'

const root = fileURLToPath(new URL('../../', import.meta.url))

export type Doc = any

/** The objects of a manifest file (path from the repository root). */
export function manifestsOf(path: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(root + path, 'utf8'))
  for (const d of docs) if (d.errors.length > 0) throw new Error(`${path}: ${d.errors.map((e) => e.message).join('; ')}`)
  return docs.map((d) => d.toJS() as Doc).filter(Boolean)
}

export function one(docs: Doc[], kind: string): Doc {
  const found = docs.filter((d) => d.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return found[0]
}

const VALIDATORS: Record<string, (doc: Doc) => { validate(): void }> = {
  Deployment: (d) => new Deployment(d),
  PersistentVolumeClaim: (d) => new PersistentVolumeClaim(d),
  Secret: (d) => new Secret(d),
  Service: (d) => new Service(d),
  PodDisruptionBudget: (d) => new PodDisruptionBudget(d),
}

/** Problems the API server's own schema finds: wrong types, missing required fields, bad enums. */
export function schemaProblems(doc: Doc): string | undefined {
  const make = VALIDATORS[doc.kind]
  if (!make) return `no schema for ${doc.kind}`
  try {
    make(doc).validate()
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

const RESTRICTED_VOLUME_TYPES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']
const SAFE_SYSCTLS = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]

/**
 * What the "restricted" Pod Security Standard (which includes "baseline") forbids in a pod spec,
 * control by control as Kubernetes' PodSecurity admission checks them. Empty when it would pass.
 */
export function restrictedViolations(pod: Doc): string[] {
  const found: string[] = []
  const podContext = pod.securityContext ?? {}
  for (const host of ['hostNetwork', 'hostPID', 'hostIPC']) if (pod[host] === true) found.push(`${host} is true`)
  if (podContext.windowsOptions?.hostProcess === true) found.push('pod: hostProcess')
  for (const volume of pod.volumes ?? []) {
    const type = Object.keys(volume).find((k) => k !== 'name')
    if (!type || !RESTRICTED_VOLUME_TYPES.includes(type)) found.push(`volume ${volume.name}: type ${type} is not allowed`)
  }
  for (const sysctl of podContext.sysctls ?? []) if (!SAFE_SYSCTLS.includes(sysctl.name)) found.push(`sysctl ${sysctl.name}`)
  const seccompOk = (type: unknown) => type === 'RuntimeDefault' || type === 'Localhost'
  const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? []), ...(pod.ephemeralContainers ?? [])]
  if (containers.length === 0) found.push('no containers')
  for (const c of containers) {
    const sc = c.securityContext ?? {}
    const where = `container ${c.name}`
    if (sc.privileged === true) found.push(`${where}: privileged`)
    if (sc.windowsOptions?.hostProcess === true) found.push(`${where}: hostProcess`)
    if (sc.allowPrivilegeEscalation !== false) found.push(`${where}: allowPrivilegeEscalation must be false`)
    if ((sc.runAsNonRoot ?? podContext.runAsNonRoot) !== true) found.push(`${where}: runAsNonRoot must be true`)
    if ((sc.runAsUser ?? podContext.runAsUser) === 0) found.push(`${where}: runAsUser 0`)
    if (!seccompOk((sc.seccompProfile ?? podContext.seccompProfile)?.type)) found.push(`${where}: seccompProfile must be RuntimeDefault or Localhost`)
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) found.push(`${where}: capabilities must drop ALL`)
    for (const cap of sc.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') found.push(`${where}: adds capability ${cap}`)
    if (sc.procMount !== undefined && sc.procMount !== 'Default') found.push(`${where}: procMount ${sc.procMount}`)
    for (const p of c.ports ?? []) if (p.hostPort) found.push(`${where}: hostPort ${p.hostPort}`)
    const appArmor = (sc.appArmorProfile ?? podContext.appArmorProfile)?.type
    if (appArmor === 'Unconfined') found.push(`${where}: AppArmor Unconfined`)
    const seLinux = sc.seLinuxOptions ?? podContext.seLinuxOptions
    if (seLinux?.user || seLinux?.role) found.push(`${where}: seLinuxOptions user/role`)
    if (seLinux?.type && !['container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t'].includes(seLinux.type)) {
      found.push(`${where}: seLinux type ${seLinux.type}`)
    }
  }
  return found
}

export function podOf(docs: Doc[]): Doc {
  return one(docs, 'Deployment').spec.template.spec
}

/** A real-looking token for each API variable of the Secret, as an operator would set them. */
export function realTokens(stringData: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const key of Object.keys(stringData)) {
    env[key] = key === 'API_CLIENT_TOKENS' ? `acme=${randomBytes(32).toString('hex')}` : randomBytes(32).toString('hex')
  }
  return env
}

