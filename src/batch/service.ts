// The batch (SPEC §5): one entry point for the scheduler, the HTTP API and the CLI.
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { dayWindow, datesInRange, type Clock } from '../clock.js'
import type { Db } from '../db/open.js'
import { isRawPurged } from '../db/archives.js'
import { markupsInForce } from '../db/pricing.js'
import { claimRun, finishRun, getRun, hasSuccessBeside, runningRuns, touchHeartbeat, type RunOutcome } from '../db/runs.js'
import type { BatchRunRow, RunTrigger } from '../db/schema.js'
import { replaceDaySummaries } from '../db/summaries.js'
import type { RateProvider } from '../rates/types.js'
import type { AggregateRow, UsageSource } from '../sources/types.js'
import { addToGroups, buildClientDay, type ClientDay, type ClientGroups } from './rows.js'
import { aggregateByClient } from '../sources/per-client.js'

export interface BatchServiceDeps {
  db: Db
  source: UsageSource
  rates: RateProvider
  clock: Clock
  log: Logger
  timeZone: string
  defaultMarkupRate: string
  /** Identifies this process in the run ledger (pid@host). */
  owner?: string
  /**
   * Aggregate client by client, this many queries at once, when the source can list clients
   * (InfluxQL). Undefined: one grouped query for the day.
   */
  perClientConcurrency?: number
  /** Called once per finished day (metrics, alerts). */
  onRunFinished?: (run: BatchRunRow) => void
}

export interface StartedRun {
  run: BatchRunRow
  /** False when the date was already in flight; `run` is that run. */
  claimed: boolean
  /** Resolves with the closed run (or the in-flight run's final state). */
  done: Promise<BatchRunRow>
}

export type BatchService = ReturnType<typeof createBatchService>

const HEARTBEAT_INTERVAL_MS = 10_000
/** Aggregation yields to the event loop this often, so probes and reads are served during a large day. */
const YIELD_EVERY_ROWS = 5_000

export function defaultOwner(): string {
  return `${process.pid}@${hostname()}`
}

export function createBatchService(deps: BatchServiceDeps) {
  const { db, source, rates, clock, timeZone } = deps
  const owner = deps.owner ?? defaultOwner()
  /** Runs of this process, by run id, so a second request for a date can await the first. */
  const inFlight = new Map<number, Promise<BatchRunRow>>()
  let stopping = false
  const abortController = new AbortController()

  const iso = () => new Date(clock.now()).toISOString()

  async function processDay(run: BatchRunRow, queued: boolean): Promise<BatchRunRow> {
    const started = clock.now()
    const date = run.processing_date
    const log = deps.log.child({ runId: run.id, day: date, trigger: run.trigger })
    log.info('batch day started')
    const heartbeat = setInterval(() => touchHeartbeat(db, run.id, iso()), HEARTBEAT_INTERVAL_MS)
    heartbeat.unref()
    const warnings: string[] = []
    try {
      // A day queued behind others never starts once shutdown began.
      if (queued && stopping) throw new InterruptedError()
      // Retention removed this day's raw rows: a rerun would replace its billed summaries with
      // whatever arrived since. Failing leaves the summaries untouched until the archive is restored.
      if (source.dataSource === 'sqlite' && isRawPurged(db, date)) {
        throw new Error(`raw records of ${date} were removed by retention; restore its archive (usage-batch archive restore --date ${date}) before rerunning`)
      }
      const rate = await rates.resolveUsdPlnRate(date)
      if (!rate.ok) warnings.push(`markup_cost_pln not computed: ${rate.reason}`)

      const window = dayWindow(date, timeZone)
      // Grouped as the rows stream in: the raw aggregate rows are never held all at once.
      const { clients, records, clientErrors } = await aggregateDay(window, log)
      // Only the grace period running out aborts a started day: a stop request alone lets it finish
      // (SPEC §8), and a day that has not started yet never starts (checked above).
      abortController.signal.throwIfAborted()

      const markups = markupsInForce(db, date)
      const usdPln = rate.ok ? { rate: rate.rate.rate, effective_date: rate.rate.effective_date } : null
      const days: ClientDay[] = []
      for (const [client, groups] of clients) {
        days.push(
          buildClientDay(client, groups.values(), {
            markupRate: markups.get(client) ?? deps.defaultMarkupRate,
            usdPln,
            dataSource: source.dataSource,
          }),
        )
      }
      // The built rows hold everything needed from here on; let the groups be collected before the write.
      clients.clear()
      // Reruns count what they corrected; a first run of a date has nothing to correct.
      const counted = hasSuccessBeside(db, date, run.id, 'before')
      const failedClients = new Set(clientErrors.map((e) => e.client_org_id))
      // Clients that failed keep their previous rows; the others are replaced (SPEC §5 step 5).
      const replaced = replaceDaySummaries(db, { date, runId: run.id, now: iso(), days, failedClients })
      // A day with a failed client is not a success: it stays due for catch-up and alerts.
      const partial = clientErrors.length > 0
      const outcome: RunOutcome = {
        status: partial ? 'failed' : warnings.length > 0 ? 'succeeded_with_warnings' : 'succeeded',
        error_message: partial
          ? `${clientErrors.length} client(s) could not be aggregated; their previous summaries are kept (first: ${clientErrors[0]!.client_org_id}: ${clientErrors[0]!.error})`
          : null,
        client_errors: clientErrors,
        finished_at: iso(),
        duration_ms: clock.now() - started,
        clients_processed: days.length,
        records_processed: records,
        summaries_written: replaced.rows,
        data_corrections: counted ? replaced.inserted + replaced.updated + replaced.deleted : 0,
        exchange_rate_usd_pln: usdPln?.rate ?? null,
        warnings,
      }
      const closed = finishRun(db, run.id, outcome)
      log.info(
        {
          status: closed.status,
          clients: closed.clients_processed,
          records: closed.records_processed,
          summaries: closed.summaries_written,
          corrections: closed.data_corrections,
          usdPln: closed.exchange_rate_usd_pln,
          warnings,
          durationMs: closed.duration_ms,
        },
        'batch day done',
      )
      return closed
    } catch (error) {
      const interrupted = error instanceof InterruptedError || abortController.signal.aborted
      const message = interrupted ? 'interrupted by shutdown before it finished' : describe(error)
      const closed = finishRun(db, run.id, {
        status: interrupted ? 'interrupted' : 'failed',
        finished_at: iso(),
        duration_ms: clock.now() - started,
        error_message: message,
        warnings,
      })
      log.error({ status: closed.status, err: error, durationMs: closed.duration_ms }, 'batch day failed')
      return closed
    } finally {
      clearInterval(heartbeat)
    }
  }

  /**
   * Claims every date at once (so a second request for any of them joins instead of duplicating),
   * then processes the claimed ones one after another, oldest first.
   */
  function startMany(dates: string[], trigger: RunTrigger): StartedRun[] {
    if (stopping) throw new ShuttingDownError()
    let previous: Promise<unknown> | undefined
    return [...dates].sort().map((date) => {
      const { run, claimed } = claimRun(db, { date, trigger, dataSource: source.dataSource, startedAt: iso(), owner })
      if (!claimed) return { run, claimed, done: inFlight.get(run.id) ?? waitForForeignRun(run.id) }
      // The first day starts now; the others wait for the one before them.
      const processing = previous ? previous.then(() => processDay(run, true)) : processDay(run, false)
      const done = processing.then((closed) => {
        deps.onRunFinished?.(closed)
        return closed
      })
      previous = done
      inFlight.set(run.id, done)
      void done.finally(() => inFlight.delete(run.id))
      return { run, claimed, done }
    })
  }

  /**
   * The day's grouped sums: one grouped query, or client by client when configured and offered.
   * Per client, a failing client is reported and left out; grouped, any failure throws.
   */
  async function aggregateDay(
    window: { startMs: number; endMs: number },
    log: Logger,
  ): Promise<{ clients: ClientGroups; records: number; clientErrors: Array<{ client_org_id: string; error: string }> }> {
    const signal = abortController.signal
    const clients: ClientGroups = new Map()
    let records = 0
    const add = (row: AggregateRow) => {
      addToGroups(clients, row)
      records += row.records
    }
    const clientErrors: Array<{ client_org_id: string; error: string }> = []
    if (deps.perClientConcurrency !== undefined && source.listClients) {
      const listed = await source.listClients(window, signal)
      log.info({ clients: listed.length, concurrency: deps.perClientConcurrency }, 'aggregating client by client')
      for await (const outcome of aggregateByClient(source, window, listed, deps.perClientConcurrency, signal)) {
        if ('error' in outcome) {
          log.warn({ client: outcome.clientOrgId, err: outcome.error }, 'client aggregation failed')
          clientErrors.push({ client_org_id: outcome.clientOrgId, error: describe(outcome.error) })
        } else {
          outcome.rows.forEach(add)
        }
      }
      return { clients, records, clientErrors }
    }
    let rowCount = 0
    for await (const row of source.aggregate(window, { signal })) {
      add(row)
      rowCount += 1
      if (rowCount % YIELD_EVERY_ROWS === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    return { clients, records, clientErrors }
  }

  /** A run owned by another process: poll the ledger until it closes. */
  async function waitForForeignRun(id: number): Promise<BatchRunRow> {
    for (;;) {
      const row = getRun(db, id)
      if (!row || row.status !== 'running') return row!
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  return {
    owner,

    /** Opens (or joins) runs for the dates and processes them in the background, oldest first. */
    startMany,

    /** Runs one date to completion. */
    async runDate(date: string, trigger: RunTrigger): Promise<BatchRunRow> {
      return startMany([date], trigger)[0]!.done
    },

    /**
     * Runs each date of an inclusive range, oldest first. `onDay` sees each closed run as it
     * closes (progress for the CLI). A date already in flight is joined, not run twice.
     */
    async runRange(from: string, to: string, trigger: RunTrigger, onDay?: (run: BatchRunRow) => void): Promise<BatchRunRow[]> {
      const out: BatchRunRow[] = []
      for (const started of startMany(datesInRange(from, to), trigger)) {
        const closed = await started.done
        onDay?.(closed)
        out.push(closed)
      }
      return out
    },

    /** Runs of this process not yet finished. */
    inFlightCount: () => inFlight.size,

    /** True when this process is working on (or has queued) the run: its owner is alive. */
    isInFlight: (runId: number) => inFlight.has(runId),

    /** Every `running` run in the ledger (any process). */
    running: () => runningRuns(db),

    /**
     * Stops taking work; waits up to `graceMs` for running days, then aborts them so they close as
     * `interrupted` without touching their previous summaries.
     */
    async stop(graceMs: number): Promise<void> {
      stopping = true
      const pending = [...inFlight.values()]
      if (pending.length === 0) return
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs)
      })
      const outcome = await Promise.race([Promise.allSettled(pending), timeout])
      clearTimeout(timer)
      if (outcome === 'timeout') {
        abortController.abort(new InterruptedError())
        await Promise.allSettled(pending)
      }
    },
  }
}

export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError'
  readonly statusCode = 503
  constructor() {
    super('the service is shutting down and takes no new batch work')
  }
}

export class InterruptedError extends Error {
  override name = 'InterruptedError'
  constructor() {
    super('interrupted by shutdown')
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
    return `${error.message}${cause}`
  }
  return String(error)
}
