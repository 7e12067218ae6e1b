// Leader election's timing and state, driven by manual timers over an in-memory lock that behaves
// like a session advisory lock (one holder; a lost session frees it). The same code against a real
// PostgreSQL: test/db/postgres-leader.test.ts.
import t from 'tap'
import { pino } from 'pino'
import { fixedClock } from '../../src/clock.js'
import type { SessionLock } from '../../src/db/postgres/advisory-locks.js'
import { createLeader, createSingleProcessLeader, LEADER_CHECK_TIMEOUT_MS, LEADER_INTERVAL_MS } from '../../src/scheduler/leader.js'
import { manualTimers } from '../helpers/timers.js'

const silent = pino({ level: 'silent' })

/** The server side of the fake: who holds the one lock. */
function fakeServer() {
  return { holder: undefined as object | undefined }
}

function fakeLock(server: { holder: object | undefined }) {
  const self = {}
  const listeners: Array<(error: Error) => void> = []
  let connected = false
  let hangChecks = false
  let attempts = 0
  const lock: SessionLock = {
    async tryAcquire() {
      attempts += 1
      connected = true
      if (server.holder === undefined) server.holder = self
      return server.holder === self
    },
    isHeld() {
      if (hangChecks) return new Promise<boolean>(() => {})
      return Promise.resolve(connected && server.holder === self)
    },
    async release() {
      if (server.holder === self) server.holder = undefined
      connected = false
    },
    abandon() {
      connected = false
    },
    onLost(listener) {
      listeners.push(listener)
    },
    backendPid: () => (connected ? 1 : undefined),
  }
  return {
    lock,
    attempts: () => attempts,
    holds: () => server.holder === self,
    /** The server ended the session: the lock is freed and the client hears of it. */
    loseConnection() {
      connected = false
      if (server.holder === self) server.holder = undefined
      for (const listener of listeners) listener(new Error('terminating connection due to administrator command'))
    },
    /** The network went silent: checks never answer, the server still sees the session. */
    hangChecks() {
      hangChecks = true
    },
  }
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

function setup() {
  const clock = fixedClock(Date.UTC(2026, 11, 1))
  const manual = manualTimers(clock)
  const server = fakeServer()
  const contender = () => {
    const fake = fakeLock(server)
    const leader = createLeader({ lock: fake.lock, log: silent, timers: manual.timers })
    const changes: boolean[] = []
    leader.onChange((state) => changes.push(state))
    return { ...fake, leader, changes }
  }
  const advance = (ms: number) => manual.advanceTo(clock.now() + ms, settle)
  return { clock, manual, server, contender, advance }
}

t.test('the first contender leads; the second follows and keeps trying', async (t) => {
  const { contender, advance } = setup()
  const a = contender()
  const b = contender()
  await a.leader.start()
  await b.leader.start()
  t.equal(a.leader.isLeader(), true)
  t.equal(b.leader.isLeader(), false)
  t.strictSame(a.changes, [true])
  t.strictSame(b.changes, [])
  await advance(3 * LEADER_INTERVAL_MS)
  t.equal(b.attempts(), 4, 'the follower tried at start and once per interval')
  t.equal(a.leader.isLeader(), true, 'a healthy leader keeps the lock')
  t.equal(b.leader.isLeader(), false)
})

t.test('a lost connection: the leader steps down at once, the follower takes over within one interval', async (t) => {
  const { contender, advance } = setup()
  const a = contender()
  const b = contender()
  await a.leader.start()
  await b.leader.start()
  await advance(LEADER_INTERVAL_MS / 2)
  a.loseConnection()
  t.equal(a.leader.isLeader(), false, 'stepped down on the connection error, before any timer')
  t.strictSame(a.changes, [true, false])
  await advance(LEADER_INTERVAL_MS / 2)
  t.equal(b.leader.isLeader(), true, 'the follower took over at its next attempt')
  t.ok(b.holds())
  await advance(3 * LEADER_INTERVAL_MS)
  t.equal(a.leader.isLeader(), false, 'the old leader follows now')
  t.equal([a, b].filter((c) => c.leader.isLeader()).length, 1, 'exactly one leader')
})

t.test('a leader alone retakes the lock after its backoff', async (t) => {
  const { contender, advance } = setup()
  const a = contender()
  await a.leader.start()
  a.loseConnection()
  await advance(LEADER_INTERVAL_MS)
  t.equal(a.leader.isLeader(), false, 'still backing off after one interval')
  await advance(LEADER_INTERVAL_MS)
  t.equal(a.leader.isLeader(), true, 'leads again after two intervals')
  t.strictSame(a.changes, [true, false, true])
})

t.test('a check that never answers counts as lost within interval + timeout', async (t) => {
  const { contender, advance } = setup()
  const a = contender()
  await a.leader.start()
  a.hangChecks()
  await advance(LEADER_INTERVAL_MS)
  t.equal(a.leader.isLeader(), true, 'the check is pending')
  await advance(LEADER_CHECK_TIMEOUT_MS - 1)
  t.equal(a.leader.isLeader(), true, 'not yet timed out')
  await advance(1)
  t.equal(a.leader.isLeader(), false, 'stepped down when the check timed out')
})

t.test('a check that finds the lock gone steps down', async (t) => {
  const { contender, advance, server } = setup()
  const a = contender()
  await a.leader.start()
  server.holder = {}
  await advance(LEADER_INTERVAL_MS)
  t.equal(a.leader.isLeader(), false)
  t.strictSame(a.changes, [true, false])
})

t.test('stop gives the lock up; the follower takes it; nothing stays armed', async (t) => {
  const { contender, advance, manual } = setup()
  const a = contender()
  const b = contender()
  await a.leader.start()
  await b.leader.start()
  await a.leader.stop()
  t.equal(a.leader.isLeader(), false)
  t.notOk(a.holds(), 'released')
  await advance(LEADER_INTERVAL_MS)
  t.equal(b.leader.isLeader(), true)
  await b.leader.stop()
  t.equal(manual.pendingCount(), 0, 'no timer left behind')
  t.strictSame(b.changes, [true, false])
})

t.test('stop while an attempt is in flight: it does not lead, and the lock it got is given back', async (t) => {
  const { contender, server } = setup()
  const a = contender()
  let open!: () => void
  const gate = new Promise<void>((resolve) => (open = resolve))
  const acquire = a.lock.tryAcquire.bind(a.lock)
  a.lock.tryAcquire = async () => {
    await gate
    return acquire()
  }
  const starting = a.leader.start()
  const stopping = a.leader.stop()
  open()
  await Promise.all([starting, stopping])
  t.equal(a.leader.isLeader(), false)
  t.strictSame(a.changes, [], 'never announced as leader')
  t.equal(server.holder, undefined, 'the lock is free for others')
})

t.test('an unsubscribed listener hears nothing; a failing listener breaks nothing', async (t) => {
  const { contender } = setup()
  const a = contender()
  const heard: boolean[] = []
  const unsubscribe = a.leader.onChange((state) => heard.push(state))
  a.leader.onChange(() => {
    throw new Error('listener bug')
  })
  unsubscribe()
  await a.leader.start()
  t.equal(a.leader.isLeader(), true)
  t.strictSame(heard, [])
  t.strictSame(a.changes, [true])
  await a.leader.stop()
})

t.test('SQLite mode: the single process always leads', async (t) => {
  const leader = createSingleProcessLeader()
  t.equal(leader.isLeader(), true)
  await leader.start()
  t.equal(leader.isLeader(), true)
  await leader.stop()
  t.equal(leader.isLeader(), true, 'there is nobody else to lead')
})
