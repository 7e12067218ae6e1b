// What the Docker image does, without Docker: production-only install of the built package in a
// temp folder, on the image's Node major (installed from the npm registry when the tests run on
// another), started with the Dockerfile's CMD and ENV (on loopback), probed, stopped with SIGTERM.
// Slow for a test (a production npm ci, and node@24 from the registry when the suite runs on another Node).
// SKIP_PRODUCTION_INSTALL=1 skips it for quick local runs; CI never sets it.
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const INSTALL_CHECK_TIMEOUT_MS = 25 * 60_000
const script = fileURLToPath(new URL('../../scripts/check-production-install.mjs', import.meta.url))
const root = fileURLToPath(new URL('../..', import.meta.url))

t.setTimeout(INSTALL_CHECK_TIMEOUT_MS + 60_000)

t.test('production install answers the probes like the image would', { skip: process.env.SKIP_PRODUCTION_INSTALL === '1' }, async (t) => {
  const child = spawn(process.execPath, [script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_CHECK_TIMEOUT_MS)
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  clearTimeout(timer)
  t.equal(code, 0, 'check script exits 0', { output: output.slice(-4000) })
  for (const step of [
    'the major the image ships',
    'the image refuses to start on 0.0.0.0 without API tokens',
    '/health/live → 200',
    '/health/ready → 200',
    'HEALTHCHECK → exit 0',
    'SIGTERM: exit 0 within 10 s',
    'no secret in the server output',
    'production install check passed',
  ]) {
    t.ok(output.includes(step), step)
  }
})
