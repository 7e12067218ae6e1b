// Which replica's scheduler runs ticks. With SQLite there is one process per file, so it is always
// the leader. With PostgreSQL the leader is the replica holding a session advisory lock (see
// db/postgres/advisory-locks.ts); the others retry on an interval and take over when it is freed.
// This module owns the timing and the state; the lock itself (the only SQL) lives in db/.
//
// Failover bounds with the defaults (intervalMs 5 s, checkTimeoutMs 5 s):
// - a leader that exits or is killed closes its connection: the server frees the lock at once and
//   a follower takes it at its next attempt, within one interval;
// - a leader whose session the server ends (restart, pg_terminate_backend) hears it on the
//   connection and steps down at once; the same holds for the follower's next attempt;
// - a leader whose host or network vanishes fails its next check within intervalMs + checkTimeoutMs
//   (10 s) and steps down; the server frees the lock after its keepalive gives up (~20 s,
//   SERVER_KEEPALIVE), so a follower takes over within ~25 s, and never while the old one still leads.
import type { Logger } from 'pino'
import type { SessionLock } from '../db/postgres/advisory-locks.js'
import { systemTimers, type Timers } from './scheduler.js'

export interface Leader {
  isLeader(): boolean
  /** Called on every change, with the new state; returns a function that unsubscribes. */
  onChange(listener: (leader: boolean) => void): () => void
  /** Makes the first attempt before resolving, so isLeader() is meaningful right after it. */
  start(): Promise<void>
  /** Stops trying and gives the lock up (a follower takes it at its next attempt). */
  stop(): Promise<void>
}

export const LEADER_INTERVAL_MS = 5_000
export const LEADER_CHECK_TIMEOUT_MS = 5_000
/**
 * A leader that lost its lock waits this many intervals before contending again, so that a
 * healthy follower takes over rather than a replica whose connection just failed.
 */
const LOST_BACKOFF_INTERVALS = 2

export interface LeaderDeps {
  lock: SessionLock
  log: Logger
  timers?: Timers
  /** How often a follower tries the lock and a leader checks that it still holds it. */
  intervalMs?: number
  /** A check that has not answered by then counts as lost. */
  checkTimeoutMs?: number
}

export function createLeader(deps: LeaderDeps): Leader {
  const { lock } = deps
  const timers = deps.timers ?? systemTimers
  const intervalMs = deps.intervalMs ?? LEADER_INTERVAL_MS
  const checkTimeoutMs = deps.checkTimeoutMs ?? LEADER_CHECK_TIMEOUT_MS
  const log = deps.log.child({ component: 'leader' })
  const listeners = new Set<(leader: boolean) => void>()

  let leader = false
  let started = false
  let stopped = false
  let timer: unknown
  let attempt: Promise<void> | undefined

  function set(next: boolean, reason: string) {
    if (leader === next) return
    leader = next
    if (next) log.info({ backendPid: lock.backendPid() }, 'this replica is the scheduler leader')
    else log.warn({ reason }, 'this replica is no longer the scheduler leader')
    for (const listener of listeners) {
      try {
        listener(next)
      } catch (e) {
        log.error({ err: e }, 'a leadership listener failed')
      }
    }
  }

  function schedule(delayMs: number) {
    if (stopped) return
    if (timer !== undefined) timers.clearTimeout(timer)
    timer = timers.setTimeout(() => {
      timer = undefined
      attempt = step().finally(() => (attempt = undefined))
    }, delayMs)
  }

  /** Resolves false when `promise` has not settled within checkTimeoutMs. */
  function withinTimeout(promise: Promise<boolean>): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const handle = timers.setTimeout(() => resolve(false), checkTimeoutMs)
      promise.then(
        (value) => {
          timers.clearTimeout(handle)
          resolve(value)
        },
        (error: unknown) => {
          timers.clearTimeout(handle)
          reject(error)
        },
      )
    })
  }

  function lose(reason: string) {
    lock.abandon()
    set(false, reason)
    schedule(intervalMs * LOST_BACKOFF_INTERVALS)
  }

  async function step() {
    if (stopped) return
    if (leader) {
      let held = false
      try {
        held = await withinTimeout(lock.isHeld())
      } catch (e) {
        log.warn({ err: e }, 'leader lock check failed')
      }
      if (stopped || !leader) return
      if (!held) return lose('the lock check failed or timed out')
    } else {
      try {
        // stop() may have come while the attempt was in flight: it releases what this got.
        if ((await lock.tryAcquire()) && !stopped) set(true, 'acquired')
      } catch (e) {
        log.debug({ err: e }, 'leader lock attempt failed; retrying')
      }
    }
    schedule(intervalMs)
  }

  // The connection's own error arrives before any check would notice: step down at once.
  lock.onLost((error) => {
    if (stopped || !leader) return
    log.warn({ err: error }, 'leader lock connection lost')
    lose('the lock connection was lost')
  })

  return {
    isLeader: () => leader,

    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },

    async start() {
      if (started) return
      started = true
      attempt = step().finally(() => (attempt = undefined))
      await attempt
    },

    async stop() {
      if (stopped) return
      stopped = true
      if (timer !== undefined) timers.clearTimeout(timer)
      timer = undefined
      await attempt
      set(false, 'stopped')
      await lock.release().catch((e: unknown) => log.warn({ err: e }, 'releasing the leader lock failed'))
    },
  }
}

/** SQLite mode: one process owns the file and its scheduler, so it always leads. */
export function createSingleProcessLeader(): Leader {
  return {
    isLeader: () => true,
    onChange: () => () => {},
    start: async () => {},
    stop: async () => {},
  }
}
