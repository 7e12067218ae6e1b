// Every measured scenario runs in its own Node process, so that its peak RSS
// (process.resourceUsage().maxRSS, the kernel's high-water mark) belongs to that scenario alone.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)))
export const ROOT_DIR = dirname(BENCH_DIR)

export interface ScenarioResult {
  /** Peak resident set of the child, bytes (maxRSS). */
  maxRssBytes: number
  [key: string]: unknown
}

const RESULT_PREFIX = 'RESULT '

/** Runs bench/scenario.ts <name> in a fresh `node --import tsx` and returns its RESULT line. */
export async function runScenario(name: string, args: object, options: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<ScenarioResult> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ...(options.nodeArgs ?? []), join(BENCH_DIR, 'scenario.ts'), name, JSON.stringify(args)],
    { cwd: ROOT_DIR, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 50_000) stderr += d.toString()
  })
  const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  if (timer) clearTimeout(timer)
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX))
  if (code !== 0 || !line) {
    throw new Error(`scenario ${name} failed (exit ${code}):\n${stderr.slice(-4000)}${stdout.slice(-2000)}`)
  }
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as ScenarioResult
}

/** Called by a scenario when it is done. */
export function reportResult(result: Record<string, unknown>): void {
  const maxRssBytes = process.resourceUsage().maxRSS * 1024
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify({ ...result, maxRssBytes })}\n`)
}
