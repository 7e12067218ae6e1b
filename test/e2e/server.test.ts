// The server process itself: configuration errors stop it with a message naming the variable,
// and it refuses an open API on a non-loopback address.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { checkExposure, listenProblem } from '../../src/server.js'
import { loadConfig } from '../../src/config.js'

/** Runs the server to its exit; the bound covers tsx's start on a loaded shared machine (over 30 s at load average 15). */
function startServer(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 90_000,
  })
}

t.test('an invalid variable stops the process and is named', async (t) => {
  const dir = t.testdir({})
  const res = startServer({ PORT: 'eighty', SQLITE_PATH: join(dir, 'u.db'), API_ADMIN_TOKEN: 'secret-admin-token' })
  t.equal(res.status, 1)
  t.match(res.stderr, /PORT/)
  t.match(res.stderr, /whole number/)
  t.notMatch(res.stderr + res.stdout, /secret-admin-token/)
})

t.test('refuses a non-loopback HOST without tokens unless AUTH_DISABLED', async (t) => {
  t.match(checkExposure(loadConfig({ HOST: '0.0.0.0' })), /refusing to listen on 0\.0\.0\.0/)
  t.equal(checkExposure(loadConfig({ HOST: '0.0.0.0', AUTH_DISABLED: 'true' })), undefined)
  t.equal(checkExposure(loadConfig({ HOST: '0.0.0.0', API_ADMIN_TOKEN: 'admin-token-5e1d7a93' })), undefined)
  t.equal(checkExposure(loadConfig({})), undefined)
  const dir = t.testdir({})
  const res = startServer({ HOST: '0.0.0.0', PORT: '0', SQLITE_PATH: join(dir, 'u.db') })
  t.equal(res.status, 1)
  t.match(res.stdout + res.stderr, /refusing to listen/)
})

t.test('a port in use: one line naming HOST and PORT and what to do, exit 1, no stack trace', async (t) => {
  const holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())))
  const port = (holder.address() as AddressInfo).port
  const dir = t.testdir({})
  const res = startServer({ HOST: '127.0.0.1', PORT: String(port), SQLITE_PATH: join(dir, 'u.db'), LOG_LEVEL: 'info' })
  t.equal(res.status, 1)
  const output = `${res.stdout}${res.stderr}`
  const lines = output.split('\n').filter(Boolean)
  const about = lines.filter((l) => /EADDRINUSE|in use/i.test(l))
  t.equal(about.length, 1, `one line about it (got: ${output})`)
  const line = JSON.parse(about[0]!) as { level: number; msg: string; host: string; port: number }
  t.equal(line.level, 60, 'fatal')
  t.equal(line.msg, `cannot listen on 127.0.0.1:${port}: the address is already in use (another process, perhaps another usage-batch, holds it); stop that process or set PORT (or HOST) to a free one`)
  t.match(line, { host: '127.0.0.1', port, code: 'EADDRINUSE' })
  t.notMatch(output, /^\s+at /m, 'no stack trace')
  t.notMatch(output, /"stack"/)
})

t.test('listenProblem names the address and the fix for each listen error it knows', async (t) => {
  const err = (code: string) => Object.assign(new Error(code), { code })
  t.match(listenProblem(err('EACCES'), '0.0.0.0', 80), /^cannot listen on 0\.0\.0\.0:80: permission denied .* set PORT to 1024 or above$/)
  t.match(listenProblem(err('EADDRNOTAVAIL'), '10.9.9.9', 8080), /^cannot listen on 10\.9\.9\.9:8080: HOST is not an address of this machine/)
  t.match(listenProblem(err('EADDRINUSE'), '::1', 8080), /^cannot listen on \[::1\]:8080: the address is already in use/)
  t.equal(listenProblem(err('EMFILE'), '127.0.0.1', 8080), undefined, 'anything else is not explained away')
})
