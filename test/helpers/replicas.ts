// Replicas of the service as real processes (test/helpers/replica-child.ts through tsx) on
// 127.0.0.1 free ports, sharing one PostgreSQL: started, asked over HTTP, killed with SIGKILL.
// Every child is killed at the test's teardown.
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ReplicaTimings } from '../../src/services.js'

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

interface TapLike {
  teardown(fn: () => unknown): void
}

export interface Replica {
  /** The host name it writes in its runs' owner (pid@host). */
  host: string
  url: string
  process: ChildProcess
  /** Everything it logged so far (pino JSON lines). */
  output(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILL: no shutdown of any kind, as when a node dies. Resolves once the process is reaped. */
  kill9(): Promise<void>
  get<T = unknown>(path: string): Promise<{ status: number; body: T }>
  post<T = unknown>(path: string, body: unknown): Promise<{ status: number; body: T }>
  text(path: string): Promise<string>
}

export interface ReplicaOptions {
  host: string
  env: Record<string, string>
  timings?: Partial<ReplicaTimings>
}

/** Starts a replica and resolves once it listens (its migrations are applied by then). */
export async function startReplica(t: TapLike, options: ReplicaOptions): Promise<Replica> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'test', 'helpers', 'replica-child.ts'), options.host, JSON.stringify(options.timings ?? {})],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  )
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s))
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  const kill9 = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(kill9)
  const url = await until(`replica ${options.host} to listen`, 60_000, async () => {
    if (child.exitCode !== null) throw new Error(`replica ${options.host} exited early: ${out}`)
    return /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  })
  const call = async <T>(path: string, init?: RequestInit) => {
    const res = await fetch(url + path, init)
    const text = await res.text()
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T }
  }
  return {
    host: options.host,
    url,
    process: child,
    output: () => out,
    exited,
    kill9,
    get: (path) => call(path),
    post: (path, body) => call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    text: async (path) => (await fetch(url + path)).text(),
  }
}

/** Polls `check` until it returns a value (not undefined); fails after timeoutMs. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Whether the replica says its scheduler leads (`GET /batch/status`); undefined when it does not answer. */
export async function isLeader(replica: Replica): Promise<boolean | undefined> {
  try {
    const { status, body } = await replica.get<{ scheduler: { leader: boolean } }>('/batch/status')
    return status === 200 ? body.scheduler.leader : undefined
  } catch {
    return undefined
  }
}
