// Start-up self-healing (docs/operations.md#catch-up-at-start-up): runs left `running` by a dead
// process become `abandoned`, and the dates of the last BATCH_CATCHUP_DAYS that never succeeded (or
// still lack PLN) are found for catch-up.
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { addDays, datesInRange, type Clock } from '../clock.js'
import type { BatchRunRow, Store } from '../db/store.js'

/**
 * A run on another host is declared dead only when its heartbeat (batch/service.ts
 * HEARTBEAT_INTERVAL_MS, 10 s) has been silent this long: we cannot see that host's processes.
 * Six missed heartbeats; a run declared dead by mistake cannot write its day any more (its commit is
 * refused), so the price of a false "dead" is one rerun, never two writers
 * (docs/postgresql.md#runs-whose-replica-died).
 */
export const FOREIGN_HOST_STALE_AFTER_MS = 60_000

/** process.kill(pid, 0) probes without signalling: ESRCH means no such process; EPERM means it exists. */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface LivenessDeps {
  /** This process's owner string (pid@host), as the batch service writes it. */
  self: string
  /** Whether this process is working on the run; its own runs are alive exactly then. */
  isInFlight: (runId: number) => boolean
  nowMs: number
  host?: string
  pidAlive?: (pid: number) => boolean
  /** Default FOREIGN_HOST_STALE_AFTER_MS. */
  staleAfterMs?: number
}

export function ownerLiveness(deps: LivenessDeps): (run: BatchRunRow) => boolean {
  const host = deps.host ?? hostname()
  const pidAlive = deps.pidAlive ?? isPidAlive
  return (run) => {
    const owner = run.owner
    // Our own owner string on a run we are not working on is a previous incarnation with the same
    // pid and host (pid 1 in a restarted container): dead.
    if (owner === deps.self) return deps.isInFlight(run.id)
    const parsed = owner ? /^(\d+)@(.+)$/.exec(owner) : null
    if (parsed && parsed[2] === host) return pidAlive(Number(parsed[1]))
    const beat = Date.parse(run.heartbeat_at ?? run.started_at)
    return Number.isFinite(beat) && deps.nowMs - beat < (deps.staleAfterMs ?? FOREIGN_HOST_STALE_AFTER_MS)
  }
}

export interface RecoveryDeps {
  store: Store
  clock: Clock
  log: Logger
  batch: { owner: string; isInFlight(runId: number): boolean }
  host?: string
  pidAlive?: (pid: number) => boolean
  staleAfterMs?: number
}

/** Marks runs of dead processes `abandoned`; returns them. Safe to call at any time, by any process. */
export async function abandonStaleRuns(deps: RecoveryDeps): Promise<BatchRunRow[]> {
  const nowMs = deps.clock.now()
  const alive = ownerLiveness({
    self: deps.batch.owner,
    isInFlight: (id) => deps.batch.isInFlight(id),
    nowMs,
    host: deps.host,
    pidAlive: deps.pidAlive,
    staleAfterMs: deps.staleAfterMs,
  })
  const abandoned = await deps.store.runs.abandonDead(alive, new Date(nowMs).toISOString())
  for (const run of abandoned) {
    deps.log.warn({ runId: run.id, day: run.processing_date, owner: run.owner, heartbeatAt: run.heartbeat_at }, 'run of a dead process marked abandoned')
  }
  return abandoned
}

/**
 * Dates to catch up, oldest first: of the `days` dates ending `lastDate`, those without a
 * successful run, plus those whose PLN is still missing. Bounded on purpose: a rate source that
 * stays down must not make every start re-run the whole history.
 */
export async function datesToCatchUp(store: Store, lastDate: string, days: number): Promise<string[]> {
  if (days <= 0) return []
  const window = datesInRange(addDays(lastDate, -(days - 1)), lastDate)
  const succeeded = await store.runs.datesWithSuccess(window)
  const plnMissing = await store.runs.datesWithPlnMissing(window)
  return window.filter((d) => !succeeded.has(d) || plnMissing.has(d))
}
