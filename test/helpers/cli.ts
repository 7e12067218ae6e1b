// The CLI in process, with captured output and a fixed clock; NBP kept on a closed loopback port.
import { PassThrough } from 'node:stream'
import { main } from '../../src/cli.js'
import { fixedClock } from '../../src/clock.js'
import { LOOPBACK_ONLY_ENV } from './children.js'

export async function runCli(args: string[], env: Record<string, string>, nowMs: number) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
  stderr.setEncoding('utf8').on('data', (s: string) => (err += s))
  const code = await main(args, { ...LOOPBACK_ONLY_ENV, ...env }, { stdout, stderr, clock: fixedClock(nowMs) })
  return { code, out, err }
}
