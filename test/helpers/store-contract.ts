// One behavioural contract for every Store (src/db/store.ts): each repository method's documented
// behaviour, checked the same way against SQLite and PostgreSQL, including what only several
// connections at once show (claims racing for one date, two stagings at once, a zombie's commit,
// ingests racing across "replicas"), exact money at the edges of 64 bits and past them, and the
// byte order of text.
import type { Test } from 'tap'
import { buildClientDay, type Group, type PriceInputs } from '../../src/batch/rows.js'
import { dayWindow } from '../../src/clock.js'
import type { RunTrigger } from '../../src/db/enums.js'
import type { ClaimInput, ClientDay, Store } from '../../src/db/store.js'
import { INT64_MAX, MoneyRangeError } from '../../src/money.js'
import type { UsageEvent } from '../../src/usage-event.js'

export interface StoreFixture {
  store: Store
  /** Another store on the same database, as a second process or replica opens it. */
  twin(): Promise<Store>
  /** Each summary row of the date as `table|client|key|batch_run_id|created_at|updated_at`, sorted: what "left untouched" means. */
  rowStamps(date: string): Promise<string[]>
  /** Makes the database unusable (gone, or its file unreadable). */
  breakStore(): Promise<void>
}

export type StoreFactory = (t: Test) => Promise<StoreFixture>

const TZ = 'Europe/Warsaw'
const DAY = '2026-11-20'
const T0 = '2026-11-21T13:00:00.000Z'

function claimInput(date: string, overrides: Partial<ClaimInput> = {}): ClaimInput {
  return { date, trigger: 'api', dataSource: 'sqlite', startedAt: T0, owner: '1@host-a', ...overrides }
}

function group(user: string, model: string, cost: bigint | number, tokens = 3): Group {
  return {
    external_user: user,
    model,
    sums: { input_tokens: tokens - 1, output_tokens: 1, total_tokens: tokens, total_requests: 1, raw_cost_nano_usd: cost },
  }
}

const PRICE: PriceInputs = { markupRate: '1.3', usdPln: { rate: '4.0341', effective_date: '2026-11-19' }, dataSource: 'sqlite' }
const NO_PLN: PriceInputs = { ...PRICE, usdPln: null }

function day(client: string, groups: Group[], inputs: PriceInputs = PRICE): ClientDay {
  return buildClientDay(client, groups, inputs) as ClientDay
}

/**
 * Stages the clients' rows and commits them for the date under a run: the one given, or a `cli` run
 * claimed here and closed as succeeded afterwards (a commit needs its run to be running).
 */
async function commitDay(store: Store, date: string, days: ClientDay[], options: { runId?: number; now?: string; failed?: string[] } = {}) {
  const own = options.runId === undefined
  const runId = options.runId ?? (await store.runs.claim(claimInput(date, { trigger: 'cli', owner: 'contract@test' }))).run.id
  const staging = await store.summaries.openDayStaging()
  try {
    for (const d of days) await staging.add(d)
    return await staging.commit({ date, runId, now: options.now ?? T0, failedClients: options.failed ? new Set(options.failed) : undefined })
  } finally {
    await staging.dispose()
    if (own) await store.runs.finish(runId, { status: 'succeeded', finished_at: T0, duration_ms: 1, exchange_rate_usd_pln: '4.0341' })
  }
}

/** A run of the date that is claimed and finished with the status (the ledger's way to a given state). */
async function closedRun(store: Store, date: string, status: 'succeeded' | 'failed' | 'succeeded_with_warnings', extra: { trigger?: RunTrigger; durationMs?: number; rate?: string | null } = {}) {
  const { run } = await store.runs.claim(claimInput(date, { trigger: extra.trigger ?? 'api' }))
  return store.runs.finish(run.id, {
    status,
    finished_at: T0,
    duration_ms: extra.durationMs ?? 100,
    records_processed: 10,
    summaries_written: 3,
    data_corrections: 1,
    exchange_rate_usd_pln: extra.rate === undefined ? '4.0341' : extra.rate,
  })
}

function event(i: number, overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    request_id: `req-${String(i).padStart(4, '0')}`,
    client_org_id: `client-${i % 3}`,
    model: `model-${i % 2}`,
    external_user: `user-${i % 4}`,
    input_tokens: 10,
    output_tokens: 5,
    total_tokens: 15,
    cost_nano_usd: 1_000n + BigInt(i),
    occurred_at_ms: dayWindow(DAY, TZ).startMs + i * 60_000,
    ...overrides,
  }
}

const bytewise = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))

export function runStoreContract(t: Test, name: string, factory: StoreFactory): void {
  t.test(`${name}: the run ledger`, async (t) => {
    t.test('a claim opens one running run per date; a second claim gets that run back', async (t) => {
      const { store } = await factory(t)
      const first = await store.runs.claim(claimInput(DAY))
      t.equal(first.claimed, true)
      t.equal(first.run.status, 'running')
      t.equal(first.run.heartbeat_at, T0, 'the start is the first heartbeat')
      t.equal(first.run.owner, '1@host-a')
      t.equal(typeof first.run.id, 'number')
      const second = await store.runs.claim(claimInput(DAY, { owner: '2@host-b', trigger: 'schedule' }))
      t.same({ claimed: second.claimed, id: second.run.id, owner: second.run.owner }, { claimed: false, id: first.run.id, owner: '1@host-a' })
      const other = await store.runs.claim(claimInput('2026-11-19'))
      t.ok(other.claimed && other.run.id > first.run.id, 'ids only grow')
      t.strictSame((await store.runs.running()).map((r) => r.id), [first.run.id, other.run.id], 'running runs by id')
    })

    t.test('claims racing for one date from two stores on the database get one run', async (t) => {
      const { store, twin } = await factory(t)
      const other = await twin()
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (i % 2 ? store : other).runs.claim(claimInput(DAY, { owner: `${i}@host-${i % 2}` }))),
      )
      t.equal(results.filter((r) => r.claimed).length, 1, 'exactly one claim opened a run')
      t.equal(new Set(results.map((r) => r.run.id)).size, 1, 'every claim answers the same run')
      t.equal((await store.runs.running()).length, 1)
    })

    t.test('finish closes a running run once, with redacted messages; a closed run stays as it is', async (t) => {
      const { store } = await factory(t)
      const { run } = await store.runs.claim(claimInput(DAY))
      const closed = await store.runs.finish(run.id, {
        status: 'failed',
        finished_at: '2026-11-21T13:00:05.000Z',
        duration_ms: 5_000,
        clients_processed: 2,
        records_processed: 7,
        error_message: 'cannot reach http://admin:hunter2@influx:8086/query',
        warnings: ['see https://user:pw@nbp.example/x'],
        client_errors: [{ client_org_id: 'acme', error: 'token=abc123secret rejected at https://u:p@h/' }],
      })
      t.equal(closed.status, 'failed')
      t.equal(closed.duration_ms, 5_000)
      t.equal(closed.records_processed, 7)
      t.equal(closed.summaries_written, 0, 'what the outcome leaves out keeps its default')
      t.notMatch(closed.error_message ?? '', /hunter2/)
      t.notMatch(closed.warnings, /:pw@/)
      t.notMatch(closed.client_errors, /:p@/)
      t.match(closed.client_errors, /acme/)
      const again = await store.runs.finish(run.id, { status: 'succeeded', finished_at: T0, duration_ms: 1 })
      t.same(again, closed, 'finishing a closed run changes nothing')
      t.same(await store.runs.get(run.id), closed)
      t.equal(await store.runs.get(run.id + 1000), undefined)
    })

    t.test('list: newest first, filtered, paged by id', async (t) => {
      const { store } = await factory(t)
      const ids: number[] = []
      for (const d of ['2026-11-17', '2026-11-18', '2026-11-19', '2026-11-20']) ids.push((await closedRun(store, d, d === '2026-11-18' ? 'failed' : 'succeeded')).id)
      t.strictSame((await store.runs.list({ limit: 10 })).map((r) => r.id), [...ids].reverse())
      t.strictSame((await store.runs.list({ limit: 2 })).map((r) => r.id), [ids[3], ids[2]])
      t.strictSame((await store.runs.list({ limit: 2, beforeId: ids[2] })).map((r) => r.id), [ids[1], ids[0]])
      t.strictSame((await store.runs.list({ limit: 10, status: 'failed' })).map((r) => r.processing_date), ['2026-11-18'])
      t.strictSame((await store.runs.list({ limit: 10, from: '2026-11-18', to: '2026-11-19' })).map((r) => r.processing_date), ['2026-11-19', '2026-11-18'])
    })

    t.test('heartbeat stamps a running run only; abandonDead closes the runs judged dead', async (t) => {
      const { store } = await factory(t)
      const alive = (await store.runs.claim(claimInput('2026-11-19', { owner: 'alive@h' }))).run
      const dead = (await store.runs.claim(claimInput(DAY, { owner: 'dead@h' }))).run
      await store.runs.heartbeat(alive.id, '2026-11-21T13:00:10.000Z')
      t.equal((await store.runs.get(alive.id))!.heartbeat_at, '2026-11-21T13:00:10.000Z')
      const judged: string[] = []
      const abandoned = await store.runs.abandonDead((r) => {
        judged.push(r.owner!)
        return r.owner === 'alive@h'
      }, '2026-11-21T13:05:00.000Z')
      t.strictSame(judged.sort(), ['alive@h', 'dead@h'], 'every running run is judged')
      t.strictSame(abandoned.map((r) => [r.id, r.status, r.finished_at]), [[dead.id, 'abandoned', '2026-11-21T13:05:00.000Z']])
      t.match(abandoned[0]!.error_message, /stopped before it finished/)
      t.equal((await store.runs.get(alive.id))!.status, 'running')
      await store.runs.heartbeat(dead.id, '2026-11-21T13:06:00.000Z')
      t.equal((await store.runs.get(dead.id))!.heartbeat_at, T0, 'a closed run takes no heartbeat')
      t.strictSame(await store.runs.abandonDead(() => true, T0), [])
      t.ok((await store.runs.claim(claimInput(DAY))).claimed, 'an abandoned date can be run again')
    })

    t.test('what the scheduler and the health checks ask of the ledger', async (t) => {
      const { store } = await factory(t)
      t.equal(await store.runs.lastSuccessDate(), null)
      t.equal(await store.runs.firstProcessingDate(), null)
      const failedEarly = await closedRun(store, '2026-11-17', 'failed')
      const run17 = (await store.runs.claim(claimInput('2026-11-17', { trigger: 'schedule' }))).run
      await commitDay(store, '2026-11-17', [day('acme', [group('u', 'm', 10)], NO_PLN)], { runId: run17.id })
      const ok17 = await store.runs.finish(run17.id, { status: 'succeeded', finished_at: T0, duration_ms: 1, exchange_rate_usd_pln: '4.0341' })
      const failed18 = await closedRun(store, '2026-11-18', 'failed', { trigger: 'catchup' })
      const warn19 = await closedRun(store, '2026-11-19', 'succeeded_with_warnings', { rate: null })
      const running20 = (await store.runs.claim(claimInput(DAY))).run
      t.equal(await store.runs.lastSuccessDate(), '2026-11-19')
      t.equal(await store.runs.firstProcessingDate(), '2026-11-17')
      t.equal(await store.runs.hasSuccessBeside('2026-11-17', failedEarly.id, 'after'), true)
      t.equal(await store.runs.hasSuccessBeside('2026-11-17', failedEarly.id, 'before'), false)
      t.equal(await store.runs.hasSuccessBeside('2026-11-17', ok17.id + 100, 'before'), true)
      const dates = ['2026-11-16', '2026-11-17', '2026-11-18', '2026-11-19', DAY]
      t.strictSame([...(await store.runs.datesWithSuccess(dates))].sort(), ['2026-11-17', '2026-11-19'])
      t.strictSame([...(await store.runs.datesWithSuccess([]))], [])
      t.strictSame([...(await store.runs.datesInProgress(dates, '2026-11-21T12:59:00.000Z'))], [DAY])
      t.strictSame([...(await store.runs.datesInProgress(dates, '2026-11-21T13:00:00.001Z'))], [], 'a stale heartbeat is not progress')
      t.strictSame([...(await store.runs.datesWithPlnMissing(dates))].sort(), ['2026-11-17', '2026-11-19'], 'a row without PLN, or a successful day without a rate')
      t.equal((await store.runs.lastClosed(['schedule', 'catchup']))!.id, failed18.id)
      t.ok(ok17.id < failed18.id)
      t.equal((await store.runs.lastClosed(['api']))!.id, warn19.id)
      t.equal(await store.runs.lastClosed(['cli']), undefined)
      t.strictSame((await store.runs.unresolvedFailures('2026-11-01', '2026-11-30')).map((r) => r.id), [failed18.id], 'a failure fixed later is resolved')
      t.strictSame(await store.runs.successStartTimes('2026-11-17'), [T0])
      t.ok(running20)
    })

    t.test('closedTotals: closed runs by status and trigger, duration buckets, and the settled id', async (t) => {
      const { store } = await factory(t)
      const a = await closedRun(store, '2026-11-17', 'succeeded', { durationMs: 50 })
      const b = await closedRun(store, '2026-11-18', 'succeeded', { durationMs: 500 })
      const running = (await store.runs.claim(claimInput('2026-11-19'))).run
      const c = await closedRun(store, DAY, 'failed', { trigger: 'schedule', durationMs: 5_000 })
      const read = await store.runs.closedTotals([100, 1_000], 0)
      t.equal(read.settledThroughId, running.id - 1, 'settled below the oldest running run')
      t.strictSame(read.newlySettled, [
        { status: 'succeeded', trigger: 'api', runs: 2, records: 20, summaries: 6, corrections: 2, runsWithClientErrors: 0, timedRuns: 2, durationMsSum: 550, runsAtOrBelowMs: [1, 2] },
      ])
      t.strictSame(read.unsettled, [
        { status: 'failed', trigger: 'schedule', runs: 1, records: 10, summaries: 3, corrections: 1, runsWithClientErrors: 0, timedRuns: 1, durationMsSum: 5_000, runsAtOrBelowMs: [0, 0] },
      ])
      t.ok(a.id < b.id && b.id < c.id)
      await store.runs.finish(running.id, { status: 'abandoned', finished_at: T0, duration_ms: 0, client_errors: [{ client_org_id: 'x', error: 'y' }] })
      const next = await store.runs.closedTotals([100, 1_000], read.settledThroughId)
      t.equal(next.settledThroughId, c.id)
      t.strictSame(
        next.newlySettled.map((r) => [r.status, r.trigger, r.runs, r.runsWithClientErrors]).sort(),
        [
          ['abandoned', 'api', 1, 1],
          ['failed', 'schedule', 1, 0],
        ],
        'only what settled since the known id',
      )
      t.strictSame(next.unsettled, [])
    })
  })

  t.test(`${name}: the day's summaries`, async (t) => {
    t.test('a commit replaces the day: unchanged rows untouched, changed updated, vanished deleted, failed clients kept', async (t) => {
      const { store, rowStamps } = await factory(t)
      const first = await commitDay(store, DAY, [
        day('acme', [group('u', 'm', 10), group('v', 'm', 20)]),
        day('beta', [group('u', 'm', 30)]),
        day('gone', [group('u', 'm', 40)]),
      ])
      t.strictSame(first, { inserted: 10, updated: 0, deleted: 0, unchanged: 0, rows: 10 })
      const before = await rowStamps(DAY)
      t.equal(before.length, 10)
      const same = await commitDay(
        store,
        DAY,
        [day('acme', [group('u', 'm', 10), group('v', 'm', 20)]), day('beta', [group('u', 'm', 30)]), day('gone', [group('u', 'm', 40)])],
        { now: '2026-11-22T13:00:00.000Z' },
      )
      t.strictSame(same, { inserted: 0, updated: 0, deleted: 0, unchanged: 10, rows: 10 }, 'a rerun over the same rows changes nothing')
      t.strictSame(await rowStamps(DAY), before, 'every row byte-identical: run id and timestamps kept')
      const changed = await commitDay(store, DAY, [day('acme', [group('u', 'm', 10), group('v', 'm', 21)])], { now: 'T3', failed: ['beta'] })
      t.strictSame(changed, { inserted: 0, updated: 3, deleted: 3, unchanged: 1, rows: 4 })
      const after = await rowStamps(DAY)
      t.ok(after.includes(before.find((s) => s.startsWith('client_user_daily_usage|acme|u'))!), "acme's unchanged user row untouched")
      const firstRun = before.find((s) => s.startsWith('client_user_daily_usage|acme|v|m|'))!.split('|')[4]
      const v = after.find((s) => s.startsWith('client_user_daily_usage|acme|v|m|'))!.split('|')
      t.not(v[4], firstRun, 'the changed row carries the run that changed it')
      t.strictSame(v.slice(5), [T0, 'T3'], 'created_at kept, updated_at new')
      t.equal(after.filter((s) => s.includes('|beta|')).length, 3, 'the failed client keeps its rows')
      t.equal(after.filter((s) => s.includes('|gone|')).length, 0, 'a client without records loses its rows')
      const daily = await store.summaries.clientDaily('acme', DAY, DAY)
      t.equal(daily[0]!.raw_cost_nano_usd, 31)
    })

    t.test('discard, a client staged twice, and a value no column holds fail that client alone', async (t) => {
      const { store } = await factory(t)
      const { run } = await store.runs.claim(claimInput(DAY))
      const staging = await store.summaries.openDayStaging()
      t.teardown(() => staging.dispose())
      await staging.add(day('acme', [group('u', 'm', 10)]))
      await staging.add(day('dropped', [group('u', 'm', 10)]))
      t.equal(staging.clients, 2)
      await staging.discard('dropped')
      await staging.discard('never-staged')
      t.equal(staging.clients, 1)
      const twice = await staging.add(day('acme', [group('x', 'm', 5)])).then(
        () => undefined,
        (e: unknown) => e,
      )
      t.match(twice, { message: /staged twice/ })
      t.equal(store.isStoreFailure(twice), false, "a client's own failure")
      const huge = await staging
        .add(day('huge', [group('u', 'm', INT64_MAX), group('v', 'm', INT64_MAX)], { ...NO_PLN, markupRate: '1' }))
        .then(() => undefined, (e: unknown) => e)
      t.type(huge, MoneyRangeError, 'a sum past 2^63 - 1 is refused before anything is stored')
      t.equal(store.isStoreFailure(huge), false)
      const result = await staging.commit({ date: DAY, runId: run.id, now: T0 })
      t.strictSame(result, { inserted: 3, updated: 0, deleted: 0, unchanged: 0, rows: 3 })
      t.strictSame((await store.summaries.clientsOverview(DAY, DAY)).map((c) => c.client_org_id), ['acme'])
      await staging.dispose()
      await t.rejects(staging.add(day('late', [group('u', 'm', 1)])), /committed or disposed/)
    })

    t.test('two stagings at once never see each other, and both commit', async (t) => {
      const { store, twin } = await factory(t)
      const other = await twin()
      const runA = (await store.runs.claim(claimInput('2026-11-19'))).run
      const runB = (await other.runs.claim(claimInput(DAY))).run
      const a = await store.summaries.openDayStaging()
      const b = await other.summaries.openDayStaging()
      await Promise.all([a.add(day('acme', [group('u', 'm', 1)])), b.add(day('acme', [group('u', 'm', 2)]))])
      await Promise.all([a.add(day('beta', [group('u', 'm', 3)])), b.add(day('gamma', [group('u', 'm', 4)]))])
      const [ra, rb] = await Promise.all([
        a.commit({ date: '2026-11-19', runId: runA.id, now: T0 }),
        b.commit({ date: DAY, runId: runB.id, now: T0 }),
      ])
      t.equal(ra.rows, 6)
      t.equal(rb.rows, 6)
      const sums = async (d: string) => (await store.summaries.clientsOverview(d, d)).map((c) => [c.client_org_id, c.raw_cost_nano_usd])
      t.strictSame(await sums('2026-11-19'), [['acme', 1], ['beta', 3]])
      t.strictSame(await sums(DAY), [['acme', 2], ['gamma', 4]])
    })

    t.test("a zombie's commit is refused once its run was marked abandoned", async (t) => {
      const { store, twin, rowStamps } = await factory(t)
      const survivor = await twin()
      await commitDay(store, DAY, [day('acme', [group('u', 'm', 10)])])
      const before = await rowStamps(DAY)
      const { run } = await store.runs.claim(claimInput(DAY, { owner: 'zombie@elsewhere' }))
      const staging = await store.summaries.openDayStaging()
      t.teardown(() => staging.dispose())
      await staging.add(day('acme', [group('u', 'm', 99)]))
      const abandoned = await survivor.runs.abandonDead(() => false, '2026-11-21T13:03:00.000Z')
      t.strictSame(abandoned.map((r) => r.id), [run.id])
      const refused = await staging.commit({ date: DAY, runId: run.id, now: 'T-zombie' }).then(
        () => undefined,
        (e: unknown) => e,
      )
      t.match(refused, { message: /no longer running|abandoned/ }, 'the commit is refused')
      t.strictSame(await rowStamps(DAY), before, 'the day is as the survivor left it')
      t.equal((await store.summaries.clientDaily('acme', DAY, DAY))[0]!.raw_cost_nano_usd, 10)
    })

    t.test('money is exact at ±(2^63 - 1) and in sums past it; safe amounts are numbers, others bigints', async (t) => {
      const { store } = await factory(t)
      const max = INT64_MAX
      const one = { ...NO_PLN, markupRate: '1' }
      await commitDay(store, '2026-11-18', [day('big', [group('u', 'm', max)], one), day('neg', [group('u', 'm', -max)], one)])
      await commitDay(store, '2026-11-19', [day('big', [group('u', 'm', max)], one), day('small', [group('u', 'm', 2 ** 53 - 1)], one)])
      await commitDay(store, DAY, [day('big', [group('u', 'm2', 2n ** 53n + 1n)], one)])
      const daily = await store.summaries.clientDaily('big', '2026-11-01', '2026-11-30')
      t.strictSame(daily.map((d) => d.raw_cost_nano_usd), [max, max, 2n ** 53n + 1n])
      t.equal((await store.summaries.clientDaily('neg', '2026-11-18', '2026-11-18'))[0]!.markup_cost_nano_usd, -max)
      const small = (await store.summaries.clientDaily('small', '2026-11-19', '2026-11-19'))[0]!
      t.equal(typeof small.raw_cost_nano_usd, 'number', 'a safe amount reads as a number')
      t.equal(small.raw_cost_nano_usd, 2 ** 53 - 1)
      const overview = await store.summaries.clientsOverview('2026-11-01', '2026-11-30')
      const big = overview.find((c) => c.client_org_id === 'big')!
      t.equal(big.raw_cost_nano_usd, 2n * max + 2n ** 53n + 1n, 'a sum past 2^63 is exact')
      t.equal(big.markup_cost_nano_pln, null, 'a sum over rows without PLN is null')
      t.equal(big.days_with_usage, 3)
      const models = await store.summaries.clientModelSums('big', '2026-11-01', '2026-11-30')
      t.strictSame(models.map((m) => [m.model, m.raw_cost_nano_usd]), [['m', 2n * max], ['m2', 2n ** 53n + 1n]])
      const users = await store.summaries.clientUserSums('big', '2026-11-01', '2026-11-30')
      t.equal(users[0]!.raw_cost_nano_usd, 2n * max + 2n ** 53n + 1n)
    })

    t.test('reads: bytewise order, most tokens first, distinct users, day counts, PLN gaps', async (t) => {
      const { store } = await factory(t)
      const clients = ['b', 'B', '_x', 'a', 'é', 'A']
      await commitDay(
        store,
        '2026-11-19',
        clients.map((c) => day(c, [group('zoe', 'beta-model', 5, 10), group('Zed', 'alpha', 7, 10), group('zoe', 'gamma', 1, 40)])),
      )
      await commitDay(store, DAY, [day('a', [group('ann', 'alpha', 2, 100)], NO_PLN)])
      const overview = await store.summaries.clientsOverview('2026-11-19', DAY)
      t.strictSame(overview.map((c) => c.client_org_id), [...clients].sort(bytewise))
      const a = overview.find((c) => c.client_org_id === 'a')!
      t.strictSame([a.total_tokens, a.total_requests, a.raw_cost_nano_usd, a.days_with_usage, a.markup_cost_nano_pln], [160, 4, 15, 2, null])
      const models = await store.summaries.clientModelSums('a', '2026-11-19', DAY)
      t.strictSame(models.map((m) => [m.model, m.total_tokens]), [['alpha', 110], ['gamma', 40], ['beta-model', 10]])
      const users = await store.summaries.clientUserSums('a', '2026-11-19', DAY)
      t.strictSame(users.map((u) => [u.external_user, u.total_tokens, u.models.map((m) => m.model)]), [
        ['Zed', 10, ['alpha']],
        ['ann', 100, ['alpha']],
        ['zoe', 50, ['gamma', 'beta-model']],
      ])
      t.equal(await store.summaries.distinctUsers('a', '2026-11-19', DAY), 3)
      t.equal(await store.summaries.distinctUsers('nobody', '2026-11-19', DAY), 0)
      t.strictSame(await store.summaries.dayCounts('client_daily_usage', 'a', '2026-11-01', '2026-11-30'), { days_with_usage: 2, days_missing_pln: 1 })
      t.strictSame(await store.summaries.dayCounts('client_model_daily_usage', null, '2026-11-01', '2026-11-19'), { days_with_usage: 1, days_missing_pln: 0 })
      t.strictSame(await store.summaries.plnMissingByDate('2026-11-01', '2026-11-30'), [{ date: DAY, clients: 1 }])
      const costs = await store.summaries.dailyMarkupCosts(DAY, DAY)
      t.strictSame(costs, [{ client_org_id: 'a', usage_date: DAY, markup_cost_nano_usd: 3 }])
      const daily = await store.summaries.clientDaily('a', '2026-11-01', '2026-11-30')
      t.strictSame(daily.map((d) => [d.usage_date, d.primary_model, d.unique_users, d.markup_rate, d.exchange_rate_usd_pln, d.exchange_rate_date]), [
        ['2026-11-19', 'gamma', 2, '1.3', '4.0341', '2026-11-19'],
        [DAY, 'alpha', 1, '1.3', null, null],
      ])
      t.strictSame(await store.summaries.clientDaily('a\u0000', '2026-11-01', '2026-11-30'), [], 'an id no row can hold finds nothing')
    })
  })

  t.test(`${name}: rates, pricing, archives, alerts, metadata`, async (t) => {
    const { store } = await factory(t)
    t.equal(await store.rates.get(DAY), undefined)
    const nbp = { usage_date: DAY, rate: '4.03410', effective_date: '2026-11-19', table_no: '225/A/NBP/2026', policy: 'previous-business-day' as const, fetched_at: T0 }
    t.strictSame(await store.rates.saveNbp(nbp), { ...nbp, rate: '4.0341', source: 'nbp' }, 'stored as canonical exact text')
    t.strictSame(await store.rates.saveNbp({ ...nbp, rate: '4.1' }), { ...nbp, rate: '4.1', source: 'nbp' }, 'NBP replaces NBP')
    const manual = await store.rates.setManual({ usage_date: DAY, rate: '4.2', note: 'by hand', fetched_at: 'T2' })
    t.strictSame(manual, { usage_date: DAY, rate: '4.2', effective_date: DAY, table_no: null, source: 'manual', policy: 'previous-business-day', fetched_at: 'T2' })
    t.strictSame(await store.rates.saveNbp({ ...nbp, rate: '4.3' }), manual, 'NBP never replaces a manual rate; the kept one is answered')
    t.strictSame(await store.rates.get(DAY), manual)
    await store.rates.saveNbp({ ...nbp, usage_date: '2026-11-19', effective_date: '2026-11-18' })
    t.strictSame((await store.rates.list('2026-11-01', '2026-11-30')).map((r) => [r.usage_date, r.source]), [
      ['2026-11-19', 'nbp'],
      [DAY, 'manual'],
    ])
    await t.rejects(store.rates.saveNbp({ ...nbp, rate: '0' }), RangeError)
    await t.rejects(store.rates.setManual({ usage_date: '2026-13-01', rate: '4', fetched_at: T0 }), RangeError)

    t.equal(await store.pricing.inForce('acme', DAY, '1.3'), '1.3', 'the default without an entry')
    const entry = await store.pricing.append({ client_org_id: 'acme', effective_from: '2026-11-01', markup_rate: '1.5', created_at: T0, note: 'deal' })
    t.match(entry, { client_org_id: 'acme', effective_from: '2026-11-01', markup_rate: '1.5', note: 'deal' })
    t.equal(typeof entry!.id, 'number')
    t.equal(await store.pricing.append({ client_org_id: 'acme', effective_from: '2026-11-01', markup_rate: '9', created_at: T0 }), undefined)
    await store.pricing.append({ client_org_id: 'acme', effective_from: '2026-12-01', markup_rate: '1.4', created_at: T0 })
    await store.pricing.append({ client_org_id: 'beta', effective_from: '2026-10-01', markup_rate: '2', created_at: T0 })
    t.strictSame((await store.pricing.history('acme')).map((e) => e.effective_from), ['2026-11-01', '2026-12-01'])
    t.equal(await store.pricing.inForce('acme', DAY, '1.3'), '1.5')
    t.equal(await store.pricing.inForce('acme', '2026-10-31', '1.3'), '1.3')
    t.strictSame([...(await store.pricing.allInForce(DAY))].sort(), [
      ['acme', '1.5'],
      ['beta', '2'],
    ])

    t.strictSame(await store.archives.list(), [])
    await store.archives.record({ date: DAY, fileName: 'usage-2026-11-20.ndjson.gz', rows: 3, bytes: 120, sha256: 'ab', at: T0 })
    await store.archives.record({ date: '2026-11-19', fileName: null, rows: 2, bytes: null, sha256: null, at: T0 })
    t.equal(await store.archives.isRawPurged(DAY), false)
    await store.archives.markPurged(DAY, 'T-purge')
    t.equal(await store.archives.isRawPurged(DAY), true)
    await store.archives.markRestored(DAY, 'T-restore')
    t.match(await store.archives.get(DAY), { usage_date: DAY, file_name: 'usage-2026-11-20.ndjson.gz', row_count: 3, bytes: 120, archived_at: T0, purged_at: null, restored_at: 'T-restore' })
    t.strictSame((await store.archives.list()).map((a) => [a.usage_date, a.archived_at]), [
      ['2026-11-19', null],
      [DAY, T0],
    ])

    t.equal(await store.alerts.wasSent('run_failed:2026-11-20'), false)
    const alert = { alert_key: 'run_failed:2026-11-20', kind: 'run_failed' as const, usage_date: DAY, client_org_id: null, sent_at: T0, attempts: 1 }
    await store.alerts.recordSent(alert)
    await store.alerts.recordSent({ ...alert, attempts: 5 })
    t.equal(await store.alerts.wasSent('run_failed:2026-11-20'), true)

    t.equal(typeof (await store.metadata.createdAt()), 'number', 'stamped at first open')
  })

  t.test(`${name}: the write generation`, async (t) => {
    t.test('moves with every write a summary read can see, from this store or a twin; reads and raw ingestion leave it', async (t) => {
      const { store, twin } = await factory(t)
      const other = await twin()
      // A token compares only with tokens of the same store object (SQLite's holds a per-object
      // counter), so each object's own sequence is followed: both must move with every write.
      const seen = new Map<Store, string[]>([
        [store, [await store.generation()]],
        [other, [await other.generation()]],
      ])
      const moved = async (what: string, by: Store = store) => {
        for (const [s, tokens] of seen) {
          const now = await s.generation()
          t.notOk(tokens.includes(now), `${what}: a new generation for ${s === by ? 'the writer' : 'the other store object'}`)
          tokens.push(now)
        }
      }
      // Only the writer's own token must stay: SQLite's other connections see any commit to the file
      // (raw ingestion too) through PRAGMA data_version, a cold cache there but never a stale one.
      const same = async (what: string) => t.equal(await store.generation(), seen.get(store)!.at(-1), `${what}: the same generation`)

      await store.summaries.clientDaily('client-0', '2026-11-01', '2026-11-30')
      await store.rates.list('2026-11-01', '2026-11-30')
      await same('reads')
      t.equal((await store.rawEvents.ingest([event(1), event(2)], 1_000)).accepted, 2)
      await same('raw records ingested')
      const staging = await store.summaries.openDayStaging()
      await staging.add(day('acme', [group('u', 'm', 10n)]))
      await same('a day staged, not committed')
      await staging.dispose()
      await commitDay(store, DAY, [day('acme', [group('u', 'm', 10n)])])
      await moved('a day replaced')
      await store.rates.setManual({ usage_date: DAY, rate: '4.2', fetched_at: T0 })
      await moved('a manual rate')
      await other.rates.saveNbp({ usage_date: '2026-11-19', rate: '4.0341', effective_date: '2026-11-18', table_no: '224/A/NBP/2026', policy: 'previous-business-day', fetched_at: T0 })
      await moved('an NBP rate saved by the twin', other)
      await other.pricing.append({ client_org_id: 'acme', effective_from: '2026-12-01', markup_rate: '1.25', created_at: T0 })
      await moved('a markup appended by the twin', other)
      t.equal((await store.voids.void([event(1).request_id], 'test', 2_000)).voided.length, 1)
      await moved('a void')
      await commitDay(other, DAY, [day('acme', [group('u', 'm', 11n)])])
      await moved('a day replaced by the twin', other)
      await same('and then nothing')
      t.same([...seen.values()].map((tokens) => tokens.length), [7, 7], 'six moves seen by each store object')
    })
  })

  t.test(`${name}: raw events and voids`, async (t) => {
    t.test('ingest: new records accepted, same content a duplicate, other content or a void a conflict that stores nothing', async (t) => {
      const { store } = await factory(t)
      const events = [event(1), event(2), event(3)]
      t.strictSame(await store.rawEvents.ingest(events, 1_000), { accepted: 3, conflicts: [] })
      t.strictSame(await store.rawEvents.ingest([event(1), event(4), event(4)], 2_000), { accepted: 1, conflicts: [] }, 'stored and repeated ids are duplicates')
      const refused = await store.rawEvents.ingest([event(5), event(2, { cost_nano_usd: 9n, model: 'other' }), event(3)], 3_000)
      t.equal(refused.accepted, 0)
      t.strictSame(refused.conflicts, [{ index: 1, field: 'request_id', message: 'already stored with different model, cost_usd' }])
      t.equal((await store.rawEvents.extent()).rows, 4, 'nothing of the refused call was stored')
      const voided = await store.voids.void(['req-0001'], 'test data', Date.parse('2026-11-21T10:00:00Z'))
      t.equal(voided.voided.length, 1)
      const again = await store.rawEvents.ingest([event(6), event(1)], 4_000)
      t.strictSame(again.conflicts, [
        { index: 1, field: 'request_id', message: 'was voided on 2026-11-21T10:00:00.000Z (test data); a voided request_id cannot be ingested again' },
      ])
      t.equal((await store.rawEvents.extent()).rows, 3)
    })

    t.test('ingests racing from two stores store each record once', async (t) => {
      const { store, twin } = await factory(t)
      const other = await twin()
      const batches = Array.from({ length: 6 }, (_, b) => Array.from({ length: 50 }, (_, i) => event(b * 25 + i)))
      const results = await Promise.all(batches.map((batch, i) => (i % 2 ? store : other).rawEvents.ingest(batch, 1_000 + i)))
      t.ok(results.every((r) => r.conflicts.length === 0))
      const unique = new Set(batches.flat().map((e) => e.request_id)).size
      t.equal(results.reduce((n, r) => n + r.accepted, 0), unique, 'accepted across all calls = distinct records')
      t.equal((await store.rawEvents.extent()).rows, unique)
    })

    t.test('voids: request order, repeated ids once, not found and already voided told apart; listed by instant', async (t) => {
      const { store } = await factory(t)
      await store.rawEvents.ingest([event(1), event(2), event(3)], 1_000)
      const result = await store.voids.void(['req-0003', 'nope', 'req-0001', 'req-0003'], 'duplicate billing', 5_000)
      t.strictSame(result.voided.map((v) => v.request_id), ['req-0003', 'req-0001'])
      t.strictSame(result.not_found, ['nope'])
      t.strictSame(result.already_voided, [])
      t.match(result.voided[0], { request_id: 'req-0003', reason: 'duplicate billing', voided_at_ms: 5_000, received_at_ms: 1_000, cost_nano_usd: 1_003n })
      t.strictSame((await store.voids.void(['req-0001', 'req-0002'], 'again', 6_000)).already_voided, ['req-0001'])
      const window = dayWindow(DAY, TZ)
      t.strictSame((await store.voids.list(window)).map((v) => v.request_id), ['req-0001', 'req-0002', 'req-0003'])
      t.strictSame([...(await store.voids.requestIdsIn(window))].sort(), ['req-0001', 'req-0002', 'req-0003'])
      t.equal((await store.rawEvents.extent()).rows, 0)
    })

    t.test('retention and archives: stats, selection, chunked delete, ordered export, restore', async (t) => {
      const { store } = await factory(t)
      const window = dayWindow(DAY, TZ)
      const ids = ['b', 'B', 'a', '_x', 'é', 'A']
      await store.rawEvents.ingest(ids.map((id, i) => event(i, { request_id: id })), 1_000)
      await store.rawEvents.ingest([event(10, { request_id: 'late' })], 9_000)
      await store.rawEvents.ingest([event(20, { request_id: 'next-day', occurred_at_ms: window.endMs + 5 })], 1_000)
      t.equal(await store.rawEvents.earliestBetween(window.startMs, window.endMs), window.startMs)
      t.equal(await store.rawEvents.earliestBetween(window.endMs + 10, window.endMs + 20), null)
      t.strictSame(await store.rawEvents.dayStats(window), { rows: 7, maxReceivedAt: 9_000, lastVoidedAt: null })
      const selection = { ...window, date: DAY, maxReceivedAt: 1_000 }
      t.equal(await store.rawEvents.countSelected(selection), 6)
      const exported = []
      for await (const line of store.rawEvents.exportDay(selection)) exported.push(line)
      t.strictSame(exported.map((l) => l.request_id), [...ids].sort(bytewise), 'ordered by request_id bytes')
      t.strictSame(Object.keys(exported[0]!), ['request_id', 'client_org_id', 'model', 'external_user', 'input_tokens', 'output_tokens', 'total_tokens', 'cost_nano_usd', 'occurred_at', 'received_at'])
      t.match(exported.find((l) => l.request_id === 'a'), { cost_nano_usd: 1_002, received_at: 1_000, total_tokens: 15 })
      t.equal(await store.rawEvents.deleteSelected(selection, 4), 4)
      t.equal(await store.rawEvents.deleteSelected(selection, 4), 2)
      t.equal(await store.rawEvents.countSelected(selection), 0)
      t.strictSame(await store.rawEvents.dayStats(window), { rows: 1, maxReceivedAt: 9_000, lastVoidedAt: null }, 'a later arrival is kept')
      await store.rawEvents.ingest([event(30, { request_id: 'gone-for-good' })], 1_000)
      await store.voids.void(['gone-for-good'], 'refund', 7_000)
      t.equal((await store.rawEvents.dayStats(window)).lastVoidedAt, 7_000)
      const restored = await store.rawEvents.restore([...exported, { ...exported[0]!, request_id: 'gone-for-good' }])
      t.strictSame(restored, { inserted: 6, voided: 1 }, 'a record voided since stays voided')
      t.strictSame(await store.rawEvents.restore(exported), { inserted: 0, voided: 0 }, 'a second restore finds every row stored')
      const extent = await store.rawEvents.extent()
      t.strictSame(extent, { rows: 8, oldestMs: window.startMs, newestMs: window.endMs + 5 })
      const counted = await store.rawEvents.countIn(window, true)
      t.equal(counted.rows, 7)
      t.ok(counted.bytes > 0, 'an estimate of the bytes when asked')
      t.equal((await store.rawEvents.countIn(window, false)).bytes, 0)
      const bytes = await store.rawEvents.tableBytes()
      t.ok(bytes === null || bytes > 0)
      t.equal(typeof (await store.rawEvents.reclaimFreeSpace(10, async () => {})), 'number')
    })
  })

  t.test(`${name}: readiness, health, disk usage, failures`, async (t) => {
    const { store, breakStore } = await factory(t)
    t.strictSame(await store.ready(), { ready: true })
    const health = await store.health()
    t.equal(health.status, 'up')
    t.match(health.detail, { writable: true, migrations_applied: true })
    const disk = await store.diskUsage()
    t.ok(disk.file_bytes > 0 && disk.page_size > 0 && disk.page_count > 0)
    t.equal(store.isStoreFailure(new Error('a client value')), false)
    t.equal(store.isStoreFailure(new MoneyRangeError('too big')), false)
    await breakStore()
    const ready = await store.ready()
    t.equal(ready.ready, false, 'not ready once the database is gone')
    t.equal((await store.health()).status, 'down')
    const failure = await store.runs.running().then(
      () => undefined,
      (e: unknown) => e,
    )
    t.ok(failure, 'a call on a broken store rejects, never answers nothing')
    t.equal(store.isStoreFailure(failure), true, 'and its error is a store failure')
  })
}
