// PostgreSQL session advisory locks: the coordination between replicas that share one database.
// A session lock lives exactly as long as its connection, which is what makes it safe to build a
// leader on: a process that dies, or whose session the server ends, holds nothing any more.
import pg from 'pg'

/**
 * The first key of every lock this service takes (two-int form: pg_locks shows it as classid).
 * 0x55424154 is "UBAT"; any fixed value works as long as nothing else on the database uses it.
 */
export const ADVISORY_LOCK_CLASS = 0x55424154
/**
 * The second key (pg_locks.objid), one per purpose. runClaims is taken per transaction (claims of a
 * run commit one at a time, in id order: db/postgres/runs.ts); the others per session.
 */
export const ADVISORY_LOCKS = { migrations: 1, schedulerLeader: 2, runClaims: 3 } as const
export type AdvisoryLockName = keyof typeof ADVISORY_LOCKS

/**
 * How quickly the server ends the session of a peer that vanished without closing its connection
 * (a host that died, a cut network): keepalive probes after 5 s idle, every 5 s, 3 unanswered → the
 * session and its locks go after at most ~20 s. Unanswered writes are cut after the same 20 s.
 * A leader checks its lock far more often than that (see scheduler/leader.ts), so it has stepped
 * down before the server hands the lock to anyone else.
 */
export const SERVER_KEEPALIVE = { idleS: 5, intervalS: 5, count: 3, userTimeoutMs: 20_000 } as const

/** One advisory lock held on a dedicated connection (not a pooled one: the lock is the session's). */
export interface SessionLock {
  /** One attempt, never waits. Opens the connection when there is none. True when this session holds it. */
  tryAcquire(): Promise<boolean>
  /** Asks the server whether this session still holds the lock. False without a connection. */
  isHeld(): Promise<boolean>
  /** Unlocks and closes the connection. */
  release(): Promise<void>
  /** Drops the connection without waiting for it (after a check that timed out); the server frees the lock. */
  abandon(): void
  /** Called when the connection is lost (server shut down or terminated the session, network error). */
  onLost(listener: (error: Error) => void): void
  /** The server process of the current session, or undefined without one (for diagnostics and tests). */
  backendPid(): number | undefined
}

export interface SessionLockOptions {
  url: string
  lock: AdvisoryLockName
  /** Shown in pg_stat_activity.application_name. */
  applicationName: string
}

const HELD_SQL = `
  SELECT EXISTS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2
      AND pid = pg_backend_pid() AND granted
  ) AS held`

export function createSessionLock(options: SessionLockOptions): SessionLock {
  const key = [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS[options.lock]]
  const listeners: Array<(error: Error) => void> = []
  let client: pg.Client | undefined
  let pid: number | undefined
  let connecting: Promise<pg.Client> | undefined

  function forget(c: pg.Client) {
    if (client === c) {
      client = undefined
      pid = undefined
    }
  }

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: options.url, application_name: options.applicationName, keepAlive: true })
    let lost = false
    const onLost = (error: Error) => {
      // 'error' and then 'end' both arrive for one loss: report it once, and only for the live connection.
      if (lost || client !== c) return
      lost = true
      forget(c)
      for (const listener of listeners) listener(error)
    }
    c.on('error', onLost)
    c.on('end', () => onLost(new Error('the lock connection closed')))
    await c.connect()
    try {
      // PGC_USERSET settings: any role may shorten them for its own session.
      const { rows } = await c.query<{ pid: number }>(
        `SELECT set_config('tcp_keepalives_idle', $1, false), set_config('tcp_keepalives_interval', $2, false),
                set_config('tcp_keepalives_count', $3, false), set_config('tcp_user_timeout', $4, false),
                pg_backend_pid() AS pid`,
        [SERVER_KEEPALIVE.idleS, SERVER_KEEPALIVE.intervalS, SERVER_KEEPALIVE.count, SERVER_KEEPALIVE.userTimeoutMs].map(String),
      )
      pid = rows[0]!.pid
    } catch (e) {
      await c.end().catch(() => {})
      throw e
    }
    client = c
    return c
  }

  async function connection(): Promise<pg.Client> {
    if (client) return client
    connecting ??= connect().finally(() => (connecting = undefined))
    return connecting
  }

  return {
    async tryAcquire() {
      const c = await connection()
      const { rows } = await c.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS held', key)
      return rows[0]!.held
    },

    async isHeld() {
      if (!client) return false
      const { rows } = await client.query<{ held: boolean }>(HELD_SQL, key)
      return rows[0]!.held
    },

    async release() {
      const c = client
      if (!c) return
      forget(c)
      try {
        await c.query('SELECT pg_advisory_unlock($1, $2)', key)
      } finally {
        // Ending the session frees the lock anyway, should the unlock itself have failed.
        await c.end().catch(() => {})
      }
    },

    abandon() {
      const c = client
      if (!c) return
      forget(c)
      void c.end().catch(() => {})
    },

    onLost(listener) {
      listeners.push(listener)
    },

    backendPid: () => pid,
  }
}
