// A throwaway real InfluxDB 1.x (Debian's influxd 1.6.7) on free loopback ports, for one test file.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { freePort } from './ports.js'

export interface Influxd {
  url: string
  database: string
  /** Kills the server (tests of "store down"); teardown still cleans up. */
  stop(): Promise<void>
  /** Starts it again on the same port and data (tests of "store back"). */
  restart(): Promise<void>
  /** Runs InfluxQL as an admin would (e.g. CREATE DATABASE); throws on any error. */
  admin(statement: string): Promise<void>
  /** Writes raw line protocol with ms timestamps, as the earlier system did. */
  write(database: string, lines: string): Promise<void>
}

interface TapLike {
  teardown(fn: () => unknown): void
  comment(...args: unknown[]): void
}

const STARTUP_TIMEOUT_MS = 30_000

/** INFLUXD_BIN, else `influxd` on PATH. */
function influxdPath(): string | undefined {
  const explicit = process.env.INFLUXD_BIN
  if (explicit) return existsSync(explicit) ? explicit : undefined
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'influxd'))) return join(dir, 'influxd')
  }
  return undefined
}

/**
 * Why influxd cannot be used, or undefined when it can. With REQUIRE_INFLUXDB=1 (CI) a missing
 * binary is an error, so that a broken CI image cannot turn the InfluxDB suite into skips.
 */
export function influxdUnavailable(): string | undefined {
  if (influxdPath()) return undefined
  const reason = 'influxd not installed (apt-get install -y influxdb)'
  if (process.env.REQUIRE_INFLUXDB === '1') throw new Error(`REQUIRE_INFLUXDB=1 but ${reason}`)
  console.log(`SKIP: ${reason}`)
  return reason
}


/** Starts influxd, waits for /ping, creates `database`; stops and deletes everything on teardown. */
export async function startInfluxd(t: TapLike, database = 'usage_test'): Promise<Influxd> {
  const binary = influxdPath()
  if (!binary) throw new Error('influxd not installed')
  const dir = mkdtempSync(join(tmpdir(), 'influxd-'))
  const [httpPort, rpcPort] = [await freePort(), await freePort()]
  const config = `
reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${join(dir, 'meta')}"
[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
[coordinator]
  log-queries-after = "0s"
[http]
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  flux-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false
`
  writeFileSync(join(dir, 'influxdb.conf'), config)
  let child: ChildProcess
  let stderr = ''
  let exited = true
  let exitedPromise: Promise<void> = Promise.resolve()
  const url = `http://127.0.0.1:${httpPort}`

  const launch = async () => {
    child = spawn(binary, ['-config', join(dir, 'influxdb.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
    stderr = ''
    exited = false
    child.stderr?.on('data', (d: Buffer) => {
      // Keep only the tail: influxd logs every write at info level.
      stderr = (stderr + d.toString()).slice(-4_000)
    })
    exitedPromise = new Promise<void>((resolve) =>
      child.once('exit', () => {
        exited = true
        resolve()
      }),
    )
    const deadline = Date.now() + STARTUP_TIMEOUT_MS
    for (;;) {
      if (exited) throw new Error(`influxd exited during startup:\n${stderr}`)
      try {
        const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) })
        if (r.status === 204) break
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`influxd did not answer /ping within ${STARTUP_TIMEOUT_MS} ms:\n${stderr}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const stop = async () => {
    if (!exited) {
      child.kill('SIGKILL')
      await exitedPromise
    }
  }
  t.teardown(async () => {
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })
  await launch()

  const admin = async (statement: string) => {
    const r = await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q: statement }) })
    const text = await r.text()
    if (!r.ok || text.includes('"error"')) throw new Error(`influxd admin statement failed (${r.status}): ${text}`)
  }
  await admin(`CREATE DATABASE "${database}"`)
  const write = async (db: string, lines: string) => {
    const r = await fetch(`${url}/write?db=${encodeURIComponent(db)}&precision=ms`, { method: 'POST', body: lines })
    if (r.status !== 204) throw new Error(`influxd write failed (${r.status}): ${await r.text()}`)
  }
  const restart = async () => {
    await stop()
    await launch()
  }
  return { url, database, stop, restart, admin, write }
}
