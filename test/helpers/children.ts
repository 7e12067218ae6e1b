// Child processes of the real program (src/cli.ts through tsx), each killed in the test's teardown.
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

/**
 * Tests never reach out of the machine: NBP points at a closed loopback port (connection refused
 * at once, no retries), so PLN stays null exactly as it would with NBP down.
 */
export const LOOPBACK_ONLY_ENV = { NBP_API_URL: 'http://127.0.0.1:1/api', NBP_MAX_RETRIES: '0' }

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface Child {
  process: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves with the exit code (or the signal name) once the process has exited and been reaped. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts `usage-batch <args>` with only the given environment (plus PATH): no NODE_OPTIONS from
 * the test runner, and nothing from the developer's shell.
 */
export function startCli(t: Test, args: string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...LOOPBACK_ONLY_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s))
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return { process: child, stdout: () => out, stderr: () => err, exited }
}

/**
 * Polls until `check` returns a value (not undefined), or fails after timeoutMs. The default bounds
 * a child process's start (tsx loading the CLI), which took more than 20 s on a shared 2-core
 * machine at load average 14; a check that passes returns at once whatever the bound.
 */
export async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 60_000, everyMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** Starts `usage-batch serve` on a free loopback port; resolves with its base URL once it listens. */
export async function startServer(t: Test, env: Record<string, string>): Promise<Child & { url: string }> {
  const child = startCli(t, ['serve'], { PORT: '0', ...env })
  const url = await waitFor(
    'the server to listen',
    () => {
      if (child.process.exitCode !== null) throw new Error(`server exited early: ${child.stdout()}${child.stderr()}`)
      return /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(child.stdout())?.[1]
    },
    60_000,
    20,
  )
  return { ...child, url }
}
