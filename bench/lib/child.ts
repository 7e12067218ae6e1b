// Every measured scenario runs in its own Node process, so that its peak RSS
// (process.resourceUsage().maxRSS, the kernel's high-water mark) belongs to that scenario alone.
// The process runs the bench compiled with the product (`tsc -p tsconfig.bench.json`: dist/bench
// beside dist/src, which bench/run.ts does first) by plain Node, as `npm start` runs the service:
// no TypeScript loader in the measured process (tsx and esbuild added 30–45 MB to every peak RSS).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's root, whether this module runs from bench/lib (tsx) or from dist/bench/lib. */
export const ROOT_DIR = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../' : '../../../', import.meta.url))
/** The bench's sources (its README, results.json, the load generator). */
export const BENCH_DIR = join(ROOT_DIR, 'bench')
/** bench/scenario.ts compiled. */
export const SCENARIO_JS = join(ROOT_DIR, 'dist', 'bench', 'scenario.js')

export interface ScenarioResult {
  /** Peak resident set of the child, bytes (maxRSS). */
  maxRssBytes: number
  [key: string]: unknown
}

const RESULT_PREFIX = 'RESULT '

/** Runs scenario <name> (bench/scenario.ts, compiled) in a fresh Node process and returns its RESULT line. */
export async function runScenario(name: string, args: object, options: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<ScenarioResult> {
  if (!existsSync(SCENARIO_JS)) throw new Error(`${SCENARIO_JS} is missing: run \`npx tsc -p tsconfig.bench.json\` (npm run bench does)`)
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), SCENARIO_JS, name, JSON.stringify(args)],
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

/**
 * With BENCH_CPU_PROFILE_DIR set (`npm run bench -- --cpu-prof-dir DIR`), records a CPU profile of
 * the main thread over the measured section only (module loading and setup left out), written as
 * DIR/<name>-<pid>.cpuprofile for Chrome DevTools or `node --cpu-prof`'s usual tools.
 */
export async function profiled<T>(name: string, work: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_CPU_PROFILE_DIR
  if (!dir) return work()
  const { Session } = await import('node:inspector/promises')
  const { mkdirSync, writeFileSync } = await import('node:fs')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  try {
    return await work()
  } finally {
    const { profile } = await session.post('Profiler.stop')
    session.disconnect()
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(profile))
  }
}
