// The server process itself: configuration errors stop it with a message naming the variable,
// and it refuses an open API on a non-loopback address.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { checkExposure } from '../src/server.js'
import { loadConfig } from '../src/config.js'

function startServer(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30_000,
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
