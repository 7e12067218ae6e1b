// The batch (docs/data-model.md#the-batch): one entry point for the scheduler, the HTTP API and the CLI.
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { dayWindow, datesInRange, isValidTimeZone, type Clock } from '../clock.js'
import type { RunTrigger } from '../db/enums.js'
import type { BatchRunRow, ClientError, DayStaging, RunOutcome, Store } from '../db/store.js'
import { describe, ShuttingDownError } from '../errors.js'
import type { RateProvider } from '../rates/types.js'
import type { AggregateRow, UsageSource } from '../sources/types.js'
import { addToGroups, buildClientDay, groupsOf, type ClientGroups } from './rows.js'
import { aggregateByClient } from '../sources/per-client.js'

export interface BatchServiceDeps {
  store: Store
  source: UsageSource
  rates: RateProvider
  clock: Clock
  log: Logger
  timeZone: string
  defaultMarkupRate: string
  /** Identifies this process in the run ledger (pid@host). */
  owner?: string
  /** How often a running day stamps its run (default HEARTBEAT_INTERVAL_MS). */
  heartbeatMs?: number
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

/** The ledger refused a run's outcome after every attempt (the error is the store's). */
class RunNotClosedError extends Error {
  constructor(cause: unknown) {
    super('the run could not be closed in the ledger', { cause })
  }
}

/** Closing a run in the ledger: attempts, and the pause before the n-th retry (n × this). */
const CLOSE_ATTEMPTS = 4
const CLOSE_RETRY_MS = 1_000
/** A running day stamps its run this often; recovery declares a foreign run dead only after a long silence (scheduler/recovery.ts). */
export const HEARTBEAT_INTERVAL_MS = 10_000
/** Aggregation yields to the event loop this often, so probes and reads are served during a large day. */
const YIELD_EVERY_ROWS = 5_000
const YIELD_EVERY_CLIENTS = 20
/** A long day logs how far it got this often. */
const PROGRESS_LOG_INTERVAL_MS = 5_000
/** A run names at most this many failed clients in its warnings; its `errors` list them all. */
const MAX_CLIENT_WARNINGS = 20

export function defaultOwner(host = hostname()): string {
  return `${process.pid}@${host}`
}

export function createBatchService(deps: BatchServiceDeps) {
  const { store, source, rates, clock, timeZone } = deps
  // Checking the zone builds its formatter, as the configuration's check does at start: the first
  // run does not pay for it (tens of milliseconds of ICU data), and an unknown zone fails here.
  if (!isValidTimeZone(timeZone)) throw new RangeError(`unknown time zone: ${JSON.stringify(timeZone)}`)
  const owner = deps.owner ?? defaultOwner()
  /** Runs of this process, by run id, so a second request for a date can await the first. */
  const inFlight = new Map<number, Promise<BatchRunRow>>()
  let stopping = false
  const abortController = new AbortController()
  /** Claims of this process, one call after another, so a second call for a date finds the first one's run in `inFlight`. */
  let claiming: Promise<unknown> = Promise.resolve()

  const iso = () => new Date(clock.now()).toISOString()

  async function processDay(run: BatchRunRow, queued: boolean): Promise<BatchRunRow> {
    const started = clock.now()
    const date = run.processing_date
    const log = deps.log.child({ runId: run.id, day: date, trigger: run.trigger })
    log.info('batch day started')
    const heartbeat = setInterval(() => {
      store.runs.heartbeat(run.id, iso()).catch((error: unknown) => log.warn({ err: error }, 'run heartbeat not recorded'))
    }, deps.heartbeatMs ?? HEARTBEAT_INTERVAL_MS)
    heartbeat.unref()
    const warnings: string[] = []
    let staging: DayStaging | undefined
    let preparing: Promise<unknown> | undefined
    try {
      // A day queued behind others never starts once shutdown began.
      if (queued && stopping) throw new InterruptedError()
      // A store that cannot take queries yet (InfluxDB dialect unknown) fails the day with its reason.
      await source.ready?.()
      // Retention removed this day's raw rows: a rerun would replace its billed summaries with
      // whatever arrived since. Failing leaves the summaries untouched until the archive is restored.
      if (source.dataSource !== 'influxdb_first' && (await store.archives.isRawPurged(date))) {
        throw new Error(`raw records of ${date} were removed by retention; restore its archive (usage-batch archive restore --date ${date}) before rerunning`)
      }
      const window = dayWindow(date, timeZone)
      // The raw records are read while the rate, the markups and the staging area are made ready:
      // none needs the others, and the rate may wait on NBP (docs/data-model.md#the-batch). A
      // preparation that fails stops the read, and its error is the day's.
      const prepareFailed = new AbortController()
      const prepared = (async () => {
        const rate = await rates.resolveUsdPlnRate(date)
        const markups = await store.pricing.allInForce(date)
        staging = await store.summaries.openDayStaging()
        const usdPln = rate.ok ? { rate: rate.rate.rate, effective_date: rate.rate.effective_date } : null
        return { rate, markups, usdPln, day: staging }
      })()
      preparing = prepared
      prepared.catch((error: unknown) => prepareFailed.abort(error))
      // Each client's rows are built and staged as soon as its sums are complete, so a large day
      // is never held in memory whole; the day is replaced from the staging in one transaction.
      // A client whose rows cannot be read, built or written (an amount past what a 64-bit column
      // holds, a sum SQLite cannot add, a staging insert refused) fails alone: the other clients of
      // the day are written and its previous rows are kept. Only a store that is itself unusable
      // fails the day (docs/data-model.md#the-batch).
      const rowFailures: ClientError[] = []
      const failClient = async (client: string, reason: string) => {
        await (await prepared).day.discard(client)
        rowFailures.push({ client_org_id: client, error: reason })
        log.warn({ client, reason }, 'client summaries not written; its previous summaries are kept')
      }
      const stage = async (groups: ClientGroups) => {
        const { markups, usdPln, day } = await prepared
        for (const [client, userModels] of groups) {
          try {
            await day.add(
              buildClientDay(client, groupsOf(userModels), {
                markupRate: markups.get(client) ?? deps.defaultMarkupRate,
                usdPln,
                dataSource: source.dataSource,
              }),
            )
          } catch (error) {
            if (store.isStoreFailure(error)) throw error
            await failClient(client, describe(error))
          }
        }
      }
      let aggregated: { records: number; clientErrors: ClientError[] }
      try {
        aggregated = await aggregateDay(window, log, stage, failClient, AbortSignal.any([abortController.signal, prepareFailed.signal]))
      } catch (error) {
        throw prepareFailed.signal.aborted ? prepareFailed.signal.reason : error
      }
      const { records, clientErrors } = aggregated
      const { rate, usdPln, day } = await prepared
      if (!rate.ok) warnings.push(`markup_cost_pln not computed: ${rate.reason}`)
      // Only the grace period running out aborts a started day: a stop request alone lets it finish
      // (docs/operations.md#shutdown), and a day that has not started yet never starts (checked above).
      abortController.signal.throwIfAborted()

      // Reruns count what they corrected; a first run of a date has nothing to correct.
      const counted = await store.runs.hasSuccessBeside(date, run.id, 'before')
      const failedClients = new Set([...clientErrors, ...rowFailures].map((e) => e.client_org_id))
      const clientsProcessed = day.clients
      // Clients that failed keep their previous rows; the others are replaced (docs/data-model.md#the-batch).
      const replaced = await day.commit({ date, runId: run.id, now: iso(), failedClients })
      for (const f of rowFailures.slice(0, MAX_CLIENT_WARNINGS)) {
        warnings.push(`client ${JSON.stringify(f.client_org_id)}: summaries not written, previous ones kept: ${f.error}`)
      }
      if (rowFailures.length > MAX_CLIENT_WARNINGS) {
        warnings.push(`${rowFailures.length - MAX_CLIENT_WARNINGS} more client(s) not written, previous summaries kept (see the run's errors)`)
      }
      // A client whose aggregation failed (the store did not answer for it) makes the day a failure:
      // it stays due for catch-up and alerts, and a later run can succeed. A client whose rows could
      // not be built or written fails the same way on every rerun until its data changes: the day
      // succeeds with a warning naming it.
      const partial = clientErrors.length > 0
      const outcome: RunOutcome = {
        status: partial ? 'failed' : warnings.length > 0 ? 'succeeded_with_warnings' : 'succeeded',
        error_message: partial
          ? `${clientErrors.length} client(s) could not be aggregated; their previous summaries are kept (first: ${clientErrors[0]!.client_org_id}: ${clientErrors[0]!.error})`
          : null,
        client_errors: [...clientErrors, ...rowFailures],
        finished_at: iso(),
        duration_ms: clock.now() - started,
        clients_processed: clientsProcessed,
        records_processed: records,
        summaries_written: replaced.rows,
        data_corrections: counted ? replaced.inserted + replaced.updated + replaced.deleted : 0,
        exchange_rate_usd_pln: usdPln?.rate ?? null,
        warnings,
      }
      const closed = await closeRun(run.id, outcome, log)
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
      // The day was done but the ledger would not take its outcome: another close fails the same way.
      if (error instanceof RunNotClosedError) throw error.cause
      const interrupted = error instanceof InterruptedError || abortController.signal.aborted
      const message = interrupted ? 'interrupted by shutdown before it finished' : describe(error)
      const closed = await closeRun(run.id, {
        status: interrupted ? 'interrupted' : 'failed',
        finished_at: iso(),
        duration_ms: clock.now() - started,
        error_message: message,
        warnings,
      }, log).catch((e: unknown) => {
        throw e instanceof RunNotClosedError ? e.cause : e
      })
      log.error({ status: closed.status, err: error, durationMs: closed.duration_ms }, 'batch day failed')
      return closed
    } finally {
      clearInterval(heartbeat)
      // A read that failed first leaves the preparation running: the staging it opens is dropped too.
      await preparing?.catch(() => undefined)
      await staging?.dispose().catch((error: unknown) => log.warn({ err: error }, 'day staging not dropped'))
    }
  }

  /**
   * Closes the run in the ledger. The store may be briefly gone (PostgreSQL restarting): a store
   * failure is retried a few times. When the store stays unusable this rejects, and the run stays
   * `running` in the ledger until stale-run recovery marks it `abandoned` (this process no longer
   * has it in flight), so its date can be run again.
   */
  async function closeRun(id: number, outcome: RunOutcome, log: Logger): Promise<BatchRunRow> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await store.runs.finish(id, outcome)
      } catch (error) {
        if (attempt >= CLOSE_ATTEMPTS || !store.isStoreFailure(error)) throw new RunNotClosedError(error)
        log.warn({ err: error, attempt }, 'closing the run failed; retrying')
        await new Promise((resolve) => setTimeout(resolve, attempt * CLOSE_RETRY_MS))
      }
    }
  }

  /**
   * Claims every date before processing any (so a second request for any of them joins instead of
   * duplicating), then processes the claimed ones one after another, oldest first. Resolves once
   * every date is claimed.
   */
  function startMany(dates: string[], trigger: RunTrigger): Promise<StartedRun[]> {
    if (stopping) return Promise.reject(new ShuttingDownError())
    const claims = claiming.then(async () => {
      let previous: Promise<unknown> | undefined
      const started: StartedRun[] = []
      for (const date of [...dates].sort()) {
        const { run, claimed } = await store.runs.claim({ date, trigger, dataSource: source.dataSource, startedAt: iso(), owner })
        if (!claimed) {
          started.push({ run, claimed, done: inFlight.get(run.id) ?? waitForForeignRun(run.id) })
          continue
        }
        // The first day starts now; the others wait for the one before them, however it ended.
        const next = () => processDay(run, true)
        const processing = previous ? previous.then(next, next) : processDay(run, false)
        const done = processing.then((closed) => {
          deps.onRunFinished?.(closed)
          return closed
        })
        previous = done
        inFlight.set(run.id, done)
        void done
          .finally(() => inFlight.delete(run.id))
          .catch((error: unknown) =>
            deps.log.error({ err: error, runId: run.id, day: date }, 'the run could not be closed in the ledger; stale-run recovery will mark it abandoned'),
          )
        started.push({ run, claimed, done })
      }
      return started
    })
    claiming = claims.catch(() => undefined)
    return claims
  }

  /**
   * The day's grouped sums, handed to `stage` client by client as each client's sums are complete:
   * client by client from the source when configured (InfluxQL) or offered (SQLite), else one
   * grouped query whose rows are grouped as they stream in and staged at the end.
   * Per client, a client whose query fails is reported in `clientErrors` and left out, and one whose
   * sums the source cannot read (its data, not the store) goes to `failClient`; otherwise any
   * failure throws.
   */
  async function aggregateDay(
    window: { startMs: number; endMs: number },
    log: Logger,
    stage: (groups: ClientGroups) => Promise<void>,
    failClient: (client: string, reason: string) => Promise<void>,
    signal: AbortSignal,
  ): Promise<{ records: number; clientErrors: ClientError[] }> {
    let records = 0
    let clients = 0
    let lastProgress = performance.now()
    const clientErrors: ClientError[] = []
    const stageRows = async (rows: Iterable<AggregateRow>) => {
      const groups: ClientGroups = new Map()
      for (const row of rows) {
        addToGroups(groups, row)
        records += row.total_requests
      }
      await stage(groups)
      clients += groups.size
      // Progress for whoever watches a long day in the logs, at most every few seconds.
      if (performance.now() - lastProgress >= PROGRESS_LOG_INTERVAL_MS) {
        lastProgress = performance.now()
        log.info({ clients, records }, 'batch day progress')
      }
    }
    if (deps.perClientConcurrency !== undefined && source.listClients) {
      const listed = await source.listClients(window, signal)
      log.info({ clients: listed.length, concurrency: deps.perClientConcurrency }, 'aggregating client by client')
      for await (const outcome of aggregateByClient(source, window, listed, deps.perClientConcurrency, signal)) {
        if ('error' in outcome) {
          log.warn({ client: outcome.clientOrgId, err: outcome.error }, 'client aggregation failed')
          clientErrors.push({ client_org_id: outcome.clientOrgId, error: describe(outcome.error) })
        } else {
          await stageRows(outcome.rows)
        }
      }
      return { records, clientErrors }
    }
    if (source.aggregateClients) {
      for await (const client of source.aggregateClients(window, signal)) {
        if ('error' in client) await failClient(client.client_org_id, client.error)
        else await stageRows(client.rows)
      }
      return { records, clientErrors }
    }
    const all: ClientGroups = new Map()
    let rowCount = 0
    for await (const row of source.aggregate(window, { signal })) {
      addToGroups(all, row)
      records += row.total_requests
      rowCount += 1
      if (rowCount % YIELD_EVERY_ROWS === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    // Staged one client at a time, each let go once staged.
    let staged = 0
    for (const [client, groups] of all) {
      await stage(new Map([[client, groups]]))
      all.delete(client)
      if (++staged % YIELD_EVERY_CLIENTS === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    return { records, clientErrors }
  }

  /** A run owned by another process: poll the ledger until it closes. */
  async function waitForForeignRun(id: number): Promise<BatchRunRow> {
    for (;;) {
      const row = await store.runs.get(id)
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
      return (await startMany([date], trigger))[0]!.done
    },

    /**
     * Runs each date of an inclusive range, oldest first. `onDay` sees each closed run as it
     * closes (progress for the CLI). A date already in flight is joined, not run twice.
     */
    async runRange(from: string, to: string, trigger: RunTrigger, onDay?: (run: BatchRunRow) => void): Promise<BatchRunRow[]> {
      const out: BatchRunRow[] = []
      for (const started of await startMany(datesInRange(from, to), trigger)) {
        const closed = await started.done
        onDay?.(closed)
        out.push(closed)
      }
      return out
    },

    /** True when this process is working on (or has queued) the run: its owner is alive. */
    isInFlight: (runId: number) => inFlight.has(runId),

    /** Every `running` run in the ledger (any process). */
    running: () => store.runs.running(),

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

export class InterruptedError extends Error {
  override name = 'InterruptedError'
  constructor() {
    super('interrupted by shutdown')
  }
}
