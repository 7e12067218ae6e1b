// Prometheus's own checker (Debian's `prometheus` package), for the metrics and alert-rule tests.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

/** PROMTOOL_BIN, else `promtool` on PATH. */
export function promtoolPath(): string | undefined {
  const explicit = process.env.PROMTOOL_BIN
  if (explicit) return existsSync(explicit) ? explicit : undefined
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'promtool'))) return join(dir, 'promtool')
  }
  return undefined
}

/**
 * Why promtool cannot be used, or undefined when it can. With REQUIRE_PROMTOOL=1 (CI) a missing
 * binary is an error, so that a broken CI image cannot turn these checks into skips.
 */
export function promtoolUnavailable(): string | undefined {
  if (promtoolPath()) return undefined
  const reason = 'promtool not installed (apt-get install -y prometheus)'
  if (process.env.REQUIRE_PROMTOOL === '1') throw new Error(`REQUIRE_PROMTOOL=1 but ${reason}`)
  console.log(`SKIP: ${reason}`)
  return reason
}

export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const run = spawnSync(promtoolPath()!, args, { input, encoding: 'utf8', timeout: 120_000 })
  if (run.error) throw run.error
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}
