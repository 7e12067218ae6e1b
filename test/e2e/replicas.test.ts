// Three replicas as real processes on one PostgreSQL (docs/postgresql.md#the-replica-model): what
// one writes the others read, to the nano-unit; triggers racing across replicas get one run; a
// replica killed mid-run leaves a run a survivor marks abandoned, and its date runs again; the
// scheduler leads on exactly one replica, and a killed leader is replaced within 30 s.
//
// The replicas run the production server with shorter dead-run timings (heartbeat 0.5 s, dead
// after 4 s of silence, looked for every second) so the test takes seconds, not minutes; the
// leader election keeps its production timings, so the failover measured here is production's.
import t from 'tap'
import pg from 'pg'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDatabase, postgresUnavailable, sharedPostgres } from '../helpers/postgres.js'
import { startFakeNbp } from '../helpers/fake-nbp.js'
import { isLeader, startReplica, until, type Replica } from '../helpers/replicas.js'

const DAY = '2026-11-20'
const RACED_DAY = '2026-11-18'
const TIMINGS = { heartbeatMs: 500, staleAfterMs: 4_000, recoveryIntervalMs: 1_000 }

interface Run {
  id: number
  status: string
  processing_date: string
  trigger: string
  data_source: string
  records_processed: number
  exchange_rate_usd_pln: number | null
}

const event = (id: string, client: string, user: string, model: string, cost: string, input: number, output: number, timestamp: string) => ({
  request_id: id,
  client_org_id: client,
  external_user: user,
  model,
  input_tokens: input,
  output_tokens: output,
  cost_usd: cost,
  timestamp,
})

// 2026-11-20 in Warsaw is [2026-11-19T23:00Z, 2026-11-20T23:00Z).
const EVENTS = [
  event('r-1', 'acme', 'u1', 'm-a', '0.123456789', 100, 50, '2026-11-19T23:00:00.000Z'),
  event('r-2', 'acme', 'u1', 'm-a', '0.000000001', 10, 5, '2026-11-20T12:00:00+01:00'),
  event('r-3', 'acme', 'u2', 'm-b', '2.5', 1000, 2000, '2026-11-20T22:59:59.999Z'),
  event('r-4', 'beta', 'u1', 'm-a', '0.1', 7, 3, '2026-11-20T08:00:00Z'),
  event('r-5', 'beta', 'u2', 'm-b', '0.000000005', 1, 1, '2026-11-20T09:00:00Z'),
  // The next local day: not in DAY's figures.
  event('r-6', 'acme', 'u1', 'm-a', '9', 1, 1, '2026-11-20T23:00:00.000Z'),
  // A day for the raced runs.
  event('r-7', 'acme', 'u1', 'm-a', '0.5', 1, 1, '2026-11-18T10:00:00Z'),
]

if (postgresUnavailable()) {
  t.pass('skipped: no PostgreSQL')
} else {
  t.test('three replicas on one PostgreSQL', async (t) => {
    const server = await sharedPostgres(t)
    const url = await createDatabase(t, server)
    // NBP: USD/PLN 4.0341 in the table of 2026-11-19, the business day before DAY.
    const nbp = await startFakeNbp({ mids: { '2026-11-19': 4.0341 } })
    t.teardown(() => nbp.close())
    const dataDir = mkdtempSync(join(tmpdir(), 'replicas-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const env = {
      DATABASE_URL: url,
      SQLITE_PATH: join(dataDir, 'usage.db'),
      NBP_API_URL: nbp.baseUrl,
      NBP_MAX_RETRIES: '0',
      NBP_TIMEOUT_MS: '60000',
      // A schedule that does not fire during the test, and no catch-up: only the runs asked for.
      BATCH_SCHEDULE_CRON: '0 0 29 2 *',
      BATCH_CATCHUP_DAYS: '0',
    }
    // Started together: the migrations run once, under their advisory lock.
    const replicas = await Promise.all(['replica-a', 'replica-b', 'replica-c'].map((host) => startReplica(t, { host, env, timings: TIMINGS })))
    const [a, b, c] = replicas as [Replica, Replica, Replica]
    t.same(readdirSync(dataDir), [], 'no SQLite file is created with DATABASE_URL')

    t.test('the scheduler leads on exactly one replica', async (t) => {
      const leaders = await until('one leader', 30_000, async () => {
        const states = await Promise.all(replicas.map(isLeader))
        return states.filter((s) => s === true).length === 1 && states.every((s) => s !== undefined) ? states : undefined
      })
      t.equal(leaders.filter(Boolean).length, 1)
    })

    t.test('ingest on one, batch on another, read on the third: the figures to the nano-unit', async (t) => {
      const ingested = await a.post<{ accepted: number; duplicates: number }>('/usage/events', { events: EVENTS })
      t.same(ingested, { status: 200, body: { accepted: 7, duplicates: 0 } })
      const retried = await c.post<{ accepted: number; duplicates: number }>('/usage/events', { events: EVENTS.slice(0, 2) })
      t.same(retried.body, { accepted: 0, duplicates: 2 }, 'a retry on another replica is a duplicate')

      // C reads the day before the run, so its answer cache holds the empty answer: the run on B
      // must move the shared write generation, or C would serve that stale answer below.
      const before = await c.get<{ days: unknown[] }>(`/usage/clients/acme/daily?from=${DAY}&to=${DAY}&money=string`)
      t.same([before.status, before.body.days], [200, []], 'no summaries before the run')

      const ran = await b.post<{ runs: Run[] }>('/batch/run?wait=true', { date: DAY })
      t.equal(ran.status, 200)
      t.match(ran.body.runs, [{ processing_date: DAY, status: 'succeeded', trigger: 'api', data_source: 'postgresql', records_processed: 5, exchange_rate_usd_pln: 4.0341 }])

      const daily = await c.get<{ days: Array<Record<string, unknown>>; totals: Record<string, unknown> }>(`/usage/clients/acme/daily?from=${DAY}&to=${DAY}&money=string`)
      t.equal(daily.status, 200)
      t.match(daily.body.days, [
        {
          usage_date: DAY,
          input_tokens: 1110,
          output_tokens: 2055,
          total_tokens: 3165,
          total_requests: 3,
          raw_cost_usd: '2.623456790',
          markup_cost_usd: '3.410493827',
          markup_cost_pln: '13.758273148',
          markup_rate: 1.3,
          exchange_rate_usd_pln: 4.0341,
          exchange_rate_date: '2026-11-19',
          primary_model: 'm-b',
          unique_users: 2,
        },
      ])
      t.equal(daily.body.days.length, 1)
      const users = await c.get<{ users: Array<Record<string, unknown>> }>(`/usage/clients/acme/users?from=${DAY}&to=${DAY}&money=string`)
      t.match(users.body.users, [
        { external_user: 'u1', raw_cost_usd: '0.123456790', markup_cost_usd: '0.160493827', markup_cost_pln: '0.647448148', total_requests: 2 },
        { external_user: 'u2', raw_cost_usd: '2.500000000', markup_cost_usd: '3.250000000', markup_cost_pln: '13.110825000', total_requests: 1 },
      ])
      t.equal(users.body.users.length, 2)
      // beta: 0.100000005 × 1.3 = 0.1300000065 → half-even 0.130000006; × 4.0341 → 0.524433024.
      const clients = await a.get<{ clients: Array<Record<string, unknown>> }>(`/usage/clients?from=${DAY}&to=${DAY}&money=string`)
      t.match(clients.body.clients, [
        { client_org_id: 'acme', raw_cost_usd: '2.623456790', markup_cost_usd: '3.410493827', markup_cost_pln: '13.758273148' },
        { client_org_id: 'beta', raw_cost_usd: '0.100000005', markup_cost_usd: '0.130000006', markup_cost_pln: '0.524433024' },
      ])
      t.equal(clients.body.clients.length, 2)

      for (const replica of replicas) {
        const metrics = await replica.text('/metrics')
        t.match(metrics, /\nusage_batch_runs_total\{status="succeeded",trigger="api"\} 1\n/, `${replica.host} counts the run from the shared ledger`)
        const health = await replica.get<{ data_source: string; services: Record<string, { status: string; detail: Record<string, unknown> }> }>('/health')
        t.equal(health.body.data_source, 'postgresql')
        t.match(health.body.services.database, { status: 'up', detail: { engine: 'postgresql', writable: true } })
        t.same(health.body.services.sqlite, health.body.services.database)
      }
    })

    let owner: Replica | undefined
    t.test('triggers racing on three replicas get one run; its owner killed mid-run, a survivor abandons it; the date runs again', async (t) => {
      // The run waits on NBP (which does not answer) while the three claims race and the owner dies.
      nbp.queue('hang')
      const answers = await Promise.all(replicas.map((r) => r.post<{ runs: Run[] }>('/batch/run', { date: RACED_DAY })))
      const ids = answers.map((x) => x.body.runs[0]!.id)
      t.equal(new Set(ids).size, 1, `one run for three triggers (${ids.join(', ')})`)
      const runId = ids[0]!
      const { body: run } = await a.get<Run>(`/batch/runs/${runId}`)
      t.equal(run.status, 'running')
      const ownerRow = await until('the owner in the ledger', 10_000, async () => (await ownerOf(url, runId)) ?? undefined)
      owner = replicas.find((r) => ownerRow.endsWith(`@${r.host}`))
      t.ok(owner, `the run's owner (${ownerRow}) is one of the replicas`)
      const survivors = replicas.filter((r) => r !== owner)
      await until('a heartbeat', 10_000, async () => ((await heartbeatOf(url, runId)) !== (await startedOf(url, runId)) ? true : undefined))

      const killedAt = Date.now()
      await owner!.kill9()
      const abandoned = await until('the run abandoned by a survivor', 60_000, async () => {
        const { body } = await survivors[0]!.get<Run>(`/batch/runs/${runId}`)
        return body.status === 'abandoned' ? body : undefined
      })
      const abandonMs = Date.now() - killedAt
      t.equal(abandoned.status, 'abandoned')
      t.ok(abandonMs < 2 * 60_000, `abandoned ${abandonMs} ms after the kill`)
      t.comment(`measured: run abandoned ${abandonMs} ms after kill -9 of its owner (dead after ${TIMINGS.staleAfterMs} ms of silence, looked for every ${TIMINGS.recoveryIntervalMs} ms)`)

      const rerun = await survivors[1]!.post<{ runs: Run[] }>('/batch/run?wait=true', { date: RACED_DAY })
      t.match(rerun.body.runs, [{ processing_date: RACED_DAY, status: 'succeeded' }], 'the date runs again on a survivor')
      t.not(rerun.body.runs[0]!.id, runId, 'as a new run')
      for (const replica of survivors) {
        t.match(await replica.text('/metrics'), /\nusage_batch_runs_total\{status="abandoned",trigger="api"\} 1\n/, `${replica.host} counts the abandoned run`)
      }
    })

    t.test('kill -9 of the leader: another replica leads within 30 s', async (t) => {
      const alive = replicas.filter((r) => r !== owner && r.process.exitCode === null && r.process.signalCode === null)
      t.equal(alive.length, 2)
      const leader = await until('a leader among the survivors', 30_000, async () => {
        for (const r of alive) if ((await isLeader(r)) === true) return r
        return undefined
      })
      const follower = alive.find((r) => r !== leader)!
      t.equal(await isLeader(follower), false)
      const killedAt = Date.now()
      await leader.kill9()
      await until('the follower to lead', 30_000, async () => ((await isLeader(follower)) === true ? true : undefined), 50)
      const failoverMs = Date.now() - killedAt
      t.ok(failoverMs < 30_000, `led after ${failoverMs} ms`)
      t.comment(`measured: leader replaced ${failoverMs} ms after kill -9 (production leader timings)`)
      t.equal(existsSync(env.SQLITE_PATH), false, 'still no SQLite file')
    })
  })
}

async function ledgerValue(url: string, column: 'owner' | 'heartbeat_at' | 'started_at', runId: number): Promise<string | null> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query(`SELECT ${column} AS v FROM influxdb_batch_runs WHERE id = $1`, [runId])
    return (rows[0]?.v as string | null | undefined) ?? null
  } finally {
    await client.end()
  }
}
const ownerOf = (url: string, id: number) => ledgerValue(url, 'owner', id)
const heartbeatOf = (url: string, id: number) => ledgerValue(url, 'heartbeat_at', id)
const startedOf = (url: string, id: number) => ledgerValue(url, 'started_at', id)
