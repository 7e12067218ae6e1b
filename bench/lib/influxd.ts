// A throwaway InfluxDB 1.x for the benchmark and the chaos suite: own temp dirs, loopback ports for
// both HTTP and the top-level RPC bind-address (it defaults to 8088 and would clash with any other
// instance), usage reporting off. The test helper on the InfluxQL branch does the same for tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Influxd {
  url: string
  pid: number
  /** Peak resident memory of influxd so far (VmHWM), bytes. */
  peakRssBytes(): number
  stop(): Promise<void>
  /** SIGKILL, for the chaos suite. */
  kill(): void
}

export function influxdPath(): string | null {
  for (const p of ['/usr/bin/influxd', '/usr/local/bin/influxd']) if (existsSync(p)) return p
  const which = spawnSync('sh', ['-c', 'command -v influxd'], { encoding: 'utf8' })
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export async function startInfluxd(options: { startTimeoutMs?: number } = {}): Promise<Influxd> {
  const binary = influxdPath()
  if (!binary) throw new Error('influxd not found')
  const dir = mkdtempSync(join(tmpdir(), 'usage-bench-influxd-'))
  const [httpPort, rpcPort] = [await freePort(), await freePort()]
  const config = `reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${join(dir, 'meta')}"
[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
[coordinator]
  write-timeout = "120s"
[http]
  bind-address = "127.0.0.1:${httpPort}"
  log-enabled = false
  max-row-limit = 0
[monitor]
  store-enabled = false
`
  writeFileSync(join(dir, 'influxdb.conf'), config)
  const child: ChildProcess = spawn(binary, ['-config', join(dir, 'influxdb.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 20_000) stderr += d.toString()
  })
  const url = `http://127.0.0.1:${httpPort}`
  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000)
  for (;;) {
    if (child.exitCode !== null) throw new Error(`influxd exited (${child.exitCode}): ${stderr.slice(-2000)}`)
    try {
      const res = await fetch(`${url}/ping`)
      if (res.status === 204) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`influxd did not answer /ping: ${stderr.slice(-2000)}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const pid = child.pid!
  const cleanup = () => rmSync(dir, { recursive: true, force: true })
  return {
    url,
    pid,
    peakRssBytes() {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
        return m ? Number(m[1]) * 1024 : 0
      } catch {
        return 0
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(timer)
      }
      cleanup()
    },
    kill() {
      child.kill('SIGKILL')
    },
  }
}

/** Runs one InfluxQL statement that returns no series (CREATE DATABASE…); throws on an error in the body. */
export async function influxExec(url: string, q: string, db?: string): Promise<void> {
  const body = new URLSearchParams({ q, ...(db ? { db } : {}) })
  const res = await fetch(`${url}/query`, { method: 'POST', body })
  const json = (await res.json()) as { results?: Array<{ error?: string }>; error?: string }
  const error = json.error ?? json.results?.find((r) => r.error)?.error
  if (!res.ok || error) throw new Error(`InfluxQL failed (${res.status}): ${error ?? 'no detail'}`)
}

/** Writes line protocol in batches; resolves when influxd acknowledged every batch (204). */
const WRITE_ATTEMPTS = 5

export async function writeLines(url: string, db: string, lines: Iterable<string>, perRequest = 5_000): Promise<number> {
  let batch: string[] = []
  let written = 0
  const flush = async () => {
    const body = batch.join('\n')
    // A point is identified by its series and timestamp, so resending a batch after a 5xx cannot double it.
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${url}/write?db=${encodeURIComponent(db)}&precision=ns`, { method: 'POST', body })
      if (res.status === 204) break
      const text = (await res.text()).slice(0, 500)
      if (res.status < 500 || attempt === WRITE_ATTEMPTS) throw new Error(`write failed (${res.status}) after ${attempt} attempt(s): ${text}`)
      await new Promise((r) => setTimeout(r, 1000 * attempt))
    }
    written += batch.length
    batch = []
  }
  for (const line of lines) {
    batch.push(line)
    if (batch.length === perRequest) await flush()
  }
  if (batch.length > 0) await flush()
  return written
}
