// The test PostgreSQL helper keeps its promises: skip or fail when the server is missing, and no
// server or folder left behind even when the test process is killed.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { postgresUnavailable } from '../helpers/postgres.js'
import { waitFor } from '../helpers/children.js'

// Before the first test changes the environment it reads.
const unavailable = postgresUnavailable()

t.test('a missing server skips, or fails under REQUIRE_POSTGRES=1', async (t) => {
  const saved = { bin: process.env.POSTGRES_BIN_DIR, require: process.env.REQUIRE_POSTGRES }
  t.teardown(() => {
    for (const [key, value] of [['POSTGRES_BIN_DIR', saved.bin], ['REQUIRE_POSTGRES', saved.require]] as const) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
  })
  process.env.POSTGRES_BIN_DIR = join(t.testdir({}), 'no-such-dir')
  delete process.env.REQUIRE_POSTGRES
  t.match(postgresUnavailable(), /PostgreSQL binaries not found/)
  process.env.REQUIRE_POSTGRES = '1'
  t.throws(() => postgresUnavailable(), /REQUIRE_POSTGRES=1 but PostgreSQL binaries not found/)
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('a test process killed with SIGKILL leaves no server and no folder behind', { skip: unavailable ?? false }, async (t) => {
  const helper = fileURLToPath(new URL('../helpers/postgres.ts', import.meta.url))
  const script = `const { launchPostgres } = await import(${JSON.stringify(helper)}); const s = await launchPostgres(); console.log(s.dir); setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
  const dir = await waitFor('the server to start', () => (out.includes('\n') ? out.trim() : undefined), 60_000, 20)
  const postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
  t.ok(alive(postmaster), 'the server runs')
  child.kill('SIGKILL')
  await exited
  await waitFor('the server to stop', () => (alive(postmaster) ? undefined : true), 30_000, 50)
  await waitFor('the folder to go', () => (existsSync(dir) ? undefined : true), 30_000, 50)
  t.pass('server stopped and folder removed by the watchdog')
})
