// Leader election against a real PostgreSQL: one leader among contenders, a terminated session
// steps down at once and is replaced, a killed process is replaced within 30 s, a restarted server.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { ADVISORY_LOCK_CLASS, ADVISORY_LOCKS, createSessionLock } from '../../src/db/postgres/advisory-locks.js'
import { createLeader, LEADER_INTERVAL_MS, type Leader } from '../../src/scheduler/leader.js'
import { createDatabase, postgresUnavailable, sharedPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js'
import { waitFor } from '../helpers/children.js'

const silent = pino({ level: 'silent' })
/** Short enough to keep the tests quick; the SIGKILL test uses the production default. */
const TEST_INTERVAL_MS = 300

function contender(t: Test, url: string, intervalMs = TEST_INTERVAL_MS) {
  const lock = createSessionLock({ url, lock: 'schedulerLeader', applicationName: 'usage-batch test' })
  const leader = createLeader({ lock, log: silent, intervalMs })
  t.teardown(() => leader.stop())
  return { lock, leader }
}

async function lockHolderPid(server: PostgresServer, url: string): Promise<number | undefined> {
  const database = decodeURIComponent(new URL(url).pathname.slice(1))
  const { rows } = await server.admin(
    `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
     WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted AND d.datname = $3`,
    [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS.schedulerLeader, database],
  )
  return rows[0]?.pid as number | undefined
}

const leaders = (list: Array<{ leader: Leader }>) => list.filter((c) => c.leader.isLeader()).length

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
  const server = await sharedPostgres(t)

  t.test('two contenders: exactly one leads, and it holds the lock on its own session', async (t) => {
    const url = await createDatabase(t, server)
    const a = contender(t, url)
    const b = contender(t, url)
    await Promise.all([a.leader.start(), b.leader.start()])
    t.equal(leaders([a, b]), 1, 'one leader')
    const winner = a.leader.isLeader() ? a : b
    t.equal(await lockHolderPid(server, url), winner.lock.backendPid(), "the server shows the lock on the leader's session")
    await new Promise((resolve) => setTimeout(resolve, 3 * TEST_INTERVAL_MS))
    t.equal(leaders([a, b]), 1, 'still one leader after several intervals')
    t.ok(winner.leader.isLeader(), 'and the same one')
  })

  t.test("the leader's session terminated: it steps down at once, the other takes over within the interval", async (t) => {
    const url = await createDatabase(t, server)
    const a = contender(t, url)
    await a.leader.start()
    const b = contender(t, url)
    await b.leader.start()
    t.ok(a.leader.isLeader())
    const steppedDown = new Promise<number>((resolve) => a.leader.onChange((state) => state || resolve(performance.now())))
    const killedAt = performance.now()
    await server.admin('SELECT pg_terminate_backend($1)', [a.lock.backendPid()])
    const downAfterMs = (await steppedDown) - killedAt
    t.ok(downAfterMs < TEST_INTERVAL_MS, `stepped down on the connection error (${Math.round(downAfterMs)} ms), not at a later check`)
    await waitFor('the follower to take over', () => (b.leader.isLeader() ? true : undefined), 10_000)
    const takeoverMs = performance.now() - killedAt
    t.comment(`takeover after ${Math.round(takeoverMs)} ms (interval ${TEST_INTERVAL_MS} ms)`)
    t.equal(await lockHolderPid(server, url), b.lock.backendPid())
    await new Promise((resolve) => setTimeout(resolve, 3 * TEST_INTERVAL_MS))
    t.equal(a.leader.isLeader(), false, 'the old leader now follows')
    t.equal(leaders([a, b]), 1)
  })

  t.test('a stopped leader gives the lock up to the follower', async (t) => {
    const url = await createDatabase(t, server)
    const a = contender(t, url)
    await a.leader.start()
    const b = contender(t, url)
    await b.leader.start()
    await a.leader.stop()
    await waitFor('the follower to take over', () => (b.leader.isLeader() ? true : undefined), 10_000)
    t.equal(await lockHolderPid(server, url), b.lock.backendPid())
  })

  t.test('a leader process killed with SIGKILL: a survivor leads within 30 s (production interval)', async (t) => {
    const url = await createDatabase(t, server)
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../helpers/leader-child.ts', import.meta.url)), url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
    await waitFor('the child to lead', () => (out.includes('leader\n') ? true : undefined), 30_000)
    const survivor = contender(t, url, LEADER_INTERVAL_MS)
    await survivor.leader.start()
    t.equal(survivor.leader.isLeader(), false, 'the survivor follows while the child leads')
    const killedAt = performance.now()
    child.kill('SIGKILL')
    await exited
    await waitFor('the survivor to lead', () => (survivor.leader.isLeader() ? true : undefined), 30_000, 50)
    const takeoverMs = performance.now() - killedAt
    t.ok(takeoverMs < 30_000, `the survivor leads ${Math.round(takeoverMs)} ms after the kill (interval ${LEADER_INTERVAL_MS} ms)`)
    t.equal(await lockHolderPid(server, url), survivor.lock.backendPid())
  })

  t.test('the server restarted: the leader steps down, then a contender leads again', async (t) => {
    const own = await startPostgres(t)
    const url = await createDatabase(t, own)
    const a = contender(t, url)
    const b = contender(t, url)
    await Promise.all([a.leader.start(), b.leader.start()])
    t.equal(leaders([a, b]), 1)
    await own.stop()
    await waitFor('the leader to step down', () => (leaders([a, b]) === 0 ? true : undefined), 10_000)
    t.pass('nobody leads while the server is down')
    await new Promise((resolve) => setTimeout(resolve, 2 * TEST_INTERVAL_MS))
    t.equal(leaders([a, b]), 0, 'attempts against a stopped server fail quietly')
    await own.start()
    await waitFor('a leader again', () => (leaders([a, b]) === 1 ? true : undefined), 10_000)
    t.equal(leaders([a, b]), 1, 'exactly one')
  })
}
