// Reproduces what the Docker image does, without a Docker engine: the built package with its
// production dependencies only, in a fresh folder, on the Node major of the image (NODE_IMAGE in the
// Dockerfile; installed from the npm registry when the running Node is another), started with the
// image's command and ENV (read from the Dockerfile's last stage), probed like Kubernetes and Docker
// would, then stopped with SIGTERM.
// Binds to loopback (HOST=127.0.0.1, PORT=0) and keeps its SQLite file in the temp folder.
// Usage: node scripts/check-production-install.mjs   (npm run check:production-install)
// Env: KEEP_PRODUCTION_INSTALL=1 keeps the temp folder for inspection.
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { IMAGE_NODE_MAJOR, nodeBinDir } from './supported-node.mjs'

const root = new URL('..', import.meta.url).pathname
const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 10_000
const ADMIN_TOKEN = 'prod-check-admin-7c1f0e9b5a'
const INFLUX_PASSWORD = 'prod-check-influx-pw-3d9a41'

function step(message) {
  process.stdout.write(`# ${message}\n`)
}

function fail(message) {
  throw new Error(message)
}

/** The Node major of the image: `ARG NODE_IMAGE=node:<major>-…`. */
export function imageNodeMajor(text) {
  const m = /^ARG NODE_IMAGE=node:(\d+)[-@:]/m.exec(text)
  if (!m) fail('Dockerfile: no ARG NODE_IMAGE=node:<major>-… line')
  return Number(m[1])
}

/** A node binary of that major: this one when it matches, else the one supported-node.mjs installs. */
function nodeOfMajor(major) {
  if (major !== IMAGE_NODE_MAJOR) fail(`Dockerfile runs Node ${major} but scripts/supported-node.mjs installs ${IMAGE_NODE_MAJOR}`)
  const bin = nodeBinDir({ exact: true, log: step })
  return bin ? join(bin, 'node') : process.execPath
}

/** ENV, CMD and HEALTHCHECK of the Dockerfile's last stage (JSON-array forms only). */
export function readDockerfile(text) {
  const joined = text.replace(/\\\r?\n/g, ' ')
  const stages = joined.split(/^FROM\s+/m)
  const last = stages[stages.length - 1]
  const env = {}
  let cmd
  let healthcheck
  for (const line of last.split(/\r?\n/)) {
    const trimmed = line.trim()
    if (trimmed.startsWith('ENV ')) {
      for (const m of trimmed.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) env[m[1]] = m[2].replace(/^"|"$/g, '')
    } else if (trimmed.startsWith('CMD ')) {
      cmd = JSON.parse(trimmed.slice(4))
    } else if (trimmed.startsWith('HEALTHCHECK ')) {
      const at = trimmed.indexOf(' CMD ')
      healthcheck = JSON.parse(trimmed.slice(at + 5))
    }
  }
  if (!cmd) fail('Dockerfile: no CMD in JSON form in the last stage')
  if (!healthcheck) fail('Dockerfile: no HEALTHCHECK ... CMD [..] in the last stage')
  return { env, cmd, healthcheck }
}

function start(dir, cmd, env, node) {
  const [program, ...args] = cmd
  const child = spawn(program === 'node' ? node : program, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = { text: '' }
  child.stdout.on('data', (chunk) => (output.text += chunk))
  child.stderr.on('data', (chunk) => (output.text += chunk))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return { child, output, exited }
}

async function waitFor(predicate, timeoutMs, what, output) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = predicate()
    if (value) return value
    if (Date.now() > deadline) fail(`timed out waiting for ${what}${output ? `:\n${output.text}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function main() {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8')
  const docker = readDockerfile(dockerfile)
  const major = imageNodeMajor(dockerfile)
  step(`Dockerfile runtime: Node ${major}, CMD ${JSON.stringify(docker.cmd)}, ENV ${JSON.stringify(docker.env)}`)

  step('building dist/ if missing or stale')
  execFileSync(process.execPath, [join(root, 'scripts/build-if-needed.mjs')], { cwd: root, stdio: 'inherit' })

  const dir = mkdtempSync(join(tmpdir(), 'usage-batch-prod-'))
  const keep = process.env.KEEP_PRODUCTION_INSTALL === '1'
  try {
    const node = nodeOfMajor(major)
    const version = execFileSync(node, ['-p', 'process.version'], { encoding: 'utf8' }).trim()
    if (Number(version.slice(1).split('.')[0]) !== major) fail(`expected Node ${major}, got ${version}`)
    step(`runs on Node ${version}, the major the image ships`)
    // npm runs on that node too, so the install sees the engine the image has.
    const npmEnv = { ...process.env, PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}` }

    // The same files the image's runtime stage copies.
    for (const file of ['package.json', 'package-lock.json']) cpSync(join(root, file), join(dir, file))
    cpSync(join(root, 'dist/src'), join(dir, 'dist/src'), { recursive: true })
    cpSync(join(root, 'drizzle'), join(dir, 'drizzle'), { recursive: true })

    step(`npm ci --omit=dev in ${dir}`)
    const started = Date.now()
    execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { cwd: dir, env: npmEnv, stdio: ['ignore', 'inherit', 'inherit'] })
    step(`production install took ${Math.round((Date.now() - started) / 1000)} s`)
    // A dev dependency that is also an optional peer of a production one (the lockfile says
    // devOptional, e.g. @types/better-sqlite3 for drizzle-orm) is installed by design; dev-only ones must not be.
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'))
    for (const [path, entry] of Object.entries(lock.packages ?? {})) {
      if (entry.dev === true && existsSync(join(dir, path))) fail(`dev-only package ${path} was installed by npm ci --omit=dev`)
    }

    const baseEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, ...docker.env }

    step('the image refuses to start on 0.0.0.0 without API tokens (docs/api.md#authentication)')
    {
      const refused = start(dir, docker.cmd, { ...baseEnv, HOST: '0.0.0.0', PORT: '0', SQLITE_PATH: join(dir, 'refused/usage.db') }, node)
      const timer = setTimeout(() => refused.child.kill('SIGKILL'), START_TIMEOUT_MS)
      const { code } = await refused.exited
      clearTimeout(timer)
      if (code !== 1 || !refused.output.text.includes('refusing to listen')) {
        fail(`expected exit 1 with "refusing to listen", got ${code}:\n${refused.output.text}`)
      }
    }

    step('starting with the image command and ENV, on loopback, with an admin token and an InfluxDB password set')
    const server = start(dir, docker.cmd, {
      ...baseEnv,
      HOST: '127.0.0.1',
      PORT: '0',
      SQLITE_PATH: join(dir, 'data/usage.db'),
      LOG_LEVEL: 'info',
      API_ADMIN_TOKEN: ADMIN_TOKEN,
      INFLUXDB_PASSWORD: INFLUX_PASSWORD,
      BATCH_SCHEDULER_ENABLED: 'false',
    }, node)
    try {
      const base = await waitFor(
        () => {
          if (server.child.exitCode !== null) fail(`server exited with ${server.child.exitCode}:\n${server.output.text}`)
          return /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(server.output.text)?.[1]
        },
        START_TIMEOUT_MS,
        'the server to listen',
        server.output,
      )
      step(`listening at ${base}`)
      const expectStatus = async (path, status, init = {}) => {
        const res = await fetch(base + path, init)
        const body = await res.text()
        if (res.status !== status) fail(`${path}: expected ${status}, got ${res.status}: ${body}`)
        step(`${path} → ${res.status}`)
        return body
      }
      await expectStatus('/health/live', 200)
      const ready = JSON.parse(await expectStatus('/health/ready', 200))
      if (ready.checks?.sqlite !== 'up') fail(`/health/ready: sqlite not up: ${JSON.stringify(ready)}`)
      await expectStatus('/batch/status', 200, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      await expectStatus('/batch/status', 401, { headers: { authorization: 'Bearer wrong-token' } })
      const metrics = await expectStatus('/metrics', 200)
      if (!metrics.includes('usage_batch_runs_total')) fail('/metrics lacks usage_batch_runs_total')

      step("the Dockerfile's HEALTHCHECK command, as Docker would run it")
      const port = new URL(base).port
      const [hcProgram, ...hcArgs] = docker.healthcheck
      execFileSync(hcProgram === 'node' ? node : hcProgram, hcArgs, {
        cwd: dir,
        env: { ...baseEnv, PORT: port },
        stdio: 'inherit',
        timeout: 5_000,
      })
      step('HEALTHCHECK → exit 0')

      step('SIGTERM: exit 0 within 10 s')
      server.child.kill('SIGTERM')
      const timer = setTimeout(() => server.child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      const { code, signal } = await server.exited
      clearTimeout(timer)
      if (code !== 0) fail(`expected exit 0 after SIGTERM, got code ${code} signal ${signal}:\n${server.output.text}`)

      for (const secret of [ADMIN_TOKEN, INFLUX_PASSWORD]) {
        if (server.output.text.includes(secret)) fail('a secret value appears in the server output')
      }
      if (!server.output.text.split('\n').some((line) => line.startsWith('{"level":'))) fail('server output is not pino JSON')
      step('no secret in the server output; logs are JSON')
    } finally {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL')
    }
  } finally {
    if (keep) step(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
  step('production install check passed')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    process.stderr.write(`production install check FAILED: ${error.message}\n`)
    process.exit(1)
  })
}
