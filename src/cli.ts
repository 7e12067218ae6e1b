#!/usr/bin/env node
// usage-batch serve | run | status | migrate | archive restore (docs/operations.md#the-cli). The same
// services as the server, so a CLI run and a running server share the single-flight claim in the store.
import { existsSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { Writable } from 'node:stream'
import { DATE_RULE, daysBetween, isValidDate, yesterday, systemClock, type Clock } from './clock.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { isOneOf, SUCCESS_STATUSES } from './db/enums.js'
import { createLogger } from './logger.js'
import { isMainModule } from './main-module.js'
import { createServices, openStore, type BatchRunRow } from './services.js'
import { compileSchedule, formatLocal } from './cron.js'
import { redactText } from './redact.js'

export const USAGE = `usage: usage-batch <command> [options]

commands:
  serve                      start the HTTP server (and the scheduler unless BATCH_SCHEDULER_ENABLED=false)
  run --date YYYY-MM-DD      consolidate one business day
  run --from YYYY-MM-DD --to YYYY-MM-DD
                             consolidate each day of an inclusive range, oldest first
  status                     runs in flight, the last successful date and recent runs
  migrate                    apply database migrations and exit
  archive restore --date YYYY-MM-DD
                             load an archived day's raw records back (RAW_ARCHIVE_DIR), idempotently;
                             then \`run --date\` re-summarises it

Configuration comes from the environment (SQLITE_PATH, BUSINESS_TIMEZONE, ...), as for the server.
Exit codes: 0 done, 1 a day failed or the configuration is invalid, 2 bad arguments.
`

/** CLI runs end within this after SIGINT/SIGTERM: the running day finishes or closes `interrupted`. */
const CLI_SHUTDOWN_GRACE_MS = 8_000
const RECENT_RUNS = 10

export interface CliIo {
  stdout: Writable
  stderr: Writable
  /** Injected for tests; the system clock otherwise. */
  clock?: Clock
}

class UsageError extends Error {
  override name = 'UsageError'
}

/** Runs one command; resolves with the process exit code. `serve` resolves only if it fails to start. */
export async function main(argv: string[], env: Record<string, string | undefined>, io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'serve':
        noArguments('serve', rest)
        // serve() exits the process itself on a signal or a bad configuration.
        await (await import('./server.js')).serve(env)
        return 0
      case 'run':
        return await runCommand(rest, env, io)
      case 'status':
        noArguments('status', rest)
        return await statusCommand(config(env), io)
      case 'migrate':
        noArguments('migrate', rest)
        return await migrateCommand(config(env), io)
      case 'archive':
        return await archiveCommand(rest, env, io)
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io[command === undefined ? 'stderr' : 'stdout'].write(USAGE)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`usage-batch: ${e.message}\n\n${USAGE}`)
      return 2
    }
    if (e instanceof ConfigError) {
      io.stderr.write(`usage-batch: ${e.message}\n`)
      return 1
    }
    io.stderr.write(`usage-batch: ${(e as Error).message}\n`)
    return 1
  }
}

function noArguments(command: string, rest: string[]) {
  if (rest.length > 0) throw new UsageError(`${command} takes no arguments (got ${rest.join(' ')})`)
}

function config(env: Record<string, string | undefined>): Config {
  return loadConfig(env)
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      options: { date: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } },
      allowPositionals: false,
      strict: true,
    }).values
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

function checkDate(name: string, value: string): string {
  if (!isValidDate(value)) throw new UsageError(`--${name} must be ${DATE_RULE} (got ${JSON.stringify(value)})`)
  return value
}

async function runCommand(args: string[], env: Record<string, string | undefined>, io: CliIo): Promise<number> {
  const values = parse(args)
  let from: string
  let to: string
  if (values.date !== undefined) {
    if (values.from !== undefined || values.to !== undefined) throw new UsageError('give either --date or --from/--to, not both')
    from = to = checkDate('date', values.date)
  } else if (values.from !== undefined && values.to !== undefined) {
    from = checkDate('from', values.from)
    to = checkDate('to', values.to)
    if (from > to) throw new UsageError(`--from (${from}) is after --to (${to})`)
  } else {
    throw new UsageError('run needs --date D, or --from A --to B')
  }
  // Configuration is read after the arguments: a typo in them should not wait on a config problem.
  const cfg = config(env)
  const clock = io.clock ?? systemClock
  const latest = yesterday(clock, cfg.BUSINESS_TIMEZONE)
  if (to > latest) throw new UsageError(`${to} has not ended yet in ${cfg.BUSINESS_TIMEZONE}: the latest date that can be run is ${latest}`)
  const days = daysBetween(from, to) + 1
  if (days > cfg.BATCH_MAX_RANGE_DAYS) throw new UsageError(`range of ${days} days exceeds BATCH_MAX_RANGE_DAYS (${cfg.BATCH_MAX_RANGE_DAYS})`)

  // Logs go to stderr beside the progress lines; quiet unless LOG_LEVEL asks for more.
  const log = createLogger({ level: env.LOG_LEVEL ? cfg.LOG_LEVEL : 'warn', destination: io.stderr })
  const services = await createServices(cfg, { log, clock })
  const { batch } = services
  const onSignal = (signal: NodeJS.Signals) => {
    io.stderr.write(`usage-batch: ${signal}: finishing the running day (up to ${CLI_SHUTDOWN_GRACE_MS / 1000} s), the rest closes as interrupted\n`)
    void batch.stop(CLI_SHUTDOWN_GRACE_MS)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    // A run left `running` by a dead process would otherwise be joined and waited on forever.
    await services.recoverStaleRuns()
    let done = 0
    const runs = await batch.runRange(from, to, 'cli', (run) => {
      done += 1
      io.stderr.write(`[${done}/${days}] ${progressLine(run)}\n`)
    })
    io.stdout.write(runsTable(runs))
    const bad = runs.filter((r) => !isOneOf(SUCCESS_STATUSES, r.status))
    return bad.length > 0 ? 1 : 0
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await batch.stop(0)
    await services.close()
  }
}

async function archiveCommand(args: string[], env: Record<string, string | undefined>, io: CliIo): Promise<number> {
  const [action, ...rest] = args
  if (action !== 'restore') throw new UsageError(`archive takes the action restore (got ${JSON.stringify(action ?? '')})`)
  const values = parse(rest)
  if (values.date === undefined || values.from !== undefined || values.to !== undefined) {
    throw new UsageError('archive restore needs --date D (one day)')
  }
  const date = checkDate('date', values.date)
  const cfg = config(env)
  const log = createLogger({ level: env.LOG_LEVEL ? cfg.LOG_LEVEL : 'warn', destination: io.stderr })
  const services = await createServices(cfg, { log, clock: io.clock ?? systemClock })
  try {
    const restored = await services.lifecycle.restoreArchive(date)
    io.stdout.write(
      `restored ${date} from ${restored.file}: ${restored.rows} rows, ${restored.inserted} inserted, ${restored.duplicates} already present, ${restored.voided} voided (skipped)\n` +
        `next: usage-batch run --date ${date}\n`,
    )
    return 0
  } finally {
    await services.close()
  }
}

function progressLine(run: BatchRunRow): string {
  const parts = [run.processing_date, run.status, `run ${run.id}`]
  if (run.trigger !== 'cli') parts.push(`(joined the ${run.trigger} run already in flight)`)
  parts.push(`${run.records_processed} records`, `${run.clients_processed} clients`, `${run.duration_ms ?? 0} ms`)
  if (run.error_message) parts.push(`: ${run.error_message}`)
  return parts.join(' ')
}

const TABLE_COLUMNS = ['date', 'run', 'trigger', 'status', 'records', 'clients', 'summaries', 'corrections', 'ms', 'note'] as const

function runRow(r: BatchRunRow): string[] {
  const warnings = JSON.parse(r.warnings) as string[]
  return [
    r.processing_date,
    String(r.id),
    r.trigger,
    r.status,
    String(r.records_processed),
    String(r.clients_processed),
    String(r.summaries_written),
    String(r.data_corrections),
    r.duration_ms === null ? '' : String(r.duration_ms),
    r.error_message ?? warnings.join('; '),
  ]
}

/** A plain text table: one header line, one line per run, columns padded to their widest cell. */
export function runsTable(runs: BatchRunRow[]): string {
  const rows = [TABLE_COLUMNS.slice(), ...runs.map(runRow)]
  const widths = TABLE_COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n'
}

async function statusCommand(cfg: Config, io: CliIo): Promise<number> {
  // Read-only intent, but opened normally: a WAL database cannot always be opened read-only, and
  // applying pending migrations here would be surprising, so they are not applied.
  if (cfg.DATABASE_URL === undefined && !existsSync(cfg.SQLITE_PATH)) {
    io.stderr.write(`usage-batch: no database at ${cfg.SQLITE_PATH} (SQLITE_PATH); run \`usage-batch migrate\` or start the server first\n`)
    return 1
  }
  const store = await openStore(cfg, { migrate: false })
  try {
    const clock = io.clock ?? systemClock
    const running = await store.runs.running()
    const next = compileSchedule(cfg.BATCH_SCHEDULE_CRON, cfg.BUSINESS_TIMEZONE).next(clock.now())
    const out: string[] = []
    out.push(`database:          ${databaseName(cfg)}`)
    out.push(
      `schedule:          ${cfg.BATCH_SCHEDULE_CRON} (${cfg.BUSINESS_TIMEZONE})` +
        (cfg.BATCH_SCHEDULER_ENABLED ? '' : ' — disabled by BATCH_SCHEDULER_ENABLED=false'),
    )
    if (cfg.BATCH_SCHEDULER_ENABLED && next !== null) out.push(`next tick:         ${formatLocal(next, cfg.BUSINESS_TIMEZONE)} (${new Date(next).toISOString()})`)
    out.push(`last success date: ${(await store.runs.lastSuccessDate()) ?? 'none'}`)
    out.push('')
    out.push(`running (${running.length}):`)
    if (running.length > 0) out.push(...running.map((r) => `  ${r.processing_date} run ${r.id} ${r.trigger} since ${r.started_at} by ${r.owner ?? 'unknown'} (heartbeat ${r.heartbeat_at ?? 'none'})`))
    out.push('')
    out.push(`recent runs (newest first, up to ${RECENT_RUNS}):`)
    io.stdout.write(out.join('\n') + '\n' + runsTable(await store.runs.list({ limit: RECENT_RUNS })))
    return 0
  } finally {
    await store.close()
  }
}

async function migrateCommand(cfg: Config, io: CliIo): Promise<number> {
  const store = await openStore(cfg, { clock: io.clock })
  await store.close()
  io.stderr.write(`usage-batch: migrations applied to ${databaseName(cfg)}\n`)
  return 0
}

/** The store the configuration names, without credentials. */
function databaseName(cfg: Config): string {
  return cfg.DATABASE_URL === undefined ? cfg.SQLITE_PATH : redactText(cfg.DATABASE_URL)
}

if (isMainModule(import.meta.url)) {
  // The one place the CLI touches the process: its arguments and environment go in, an exit code comes out.
  const code = await main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr })
  process.exitCode = code
}
