import t, { type Test } from 'tap'
import { fixedClock } from '../../src/clock.js'
import type { RatePolicy } from '../../src/db/enums.js'
import { openSqliteStore, type SqliteStore } from '../../src/db/sqlite/store.js'
import type { UsdPlnRate } from '../../src/db/store.js'
import { multiplyNano, nanoToDecimalText, toNano } from '../../src/money.js'
import { createNbpClient } from '../../src/rates/nbp.js'
import { createRateProvider } from '../../src/rates/resolve.js'
import type { RateResolution } from '../../src/rates/types.js'
import { deadPort, startFakeNbp, type FakeNbp, type FakeNbpOptions } from '../helpers/fake-nbp.js'

/** Saturday noon in Warsaw: every date the tests ask about is in the past. */
const NOW_MS = Date.parse('2026-11-28T11:00:00Z')

interface Setup {
  nbp: FakeNbp
  store: SqliteStore
  sleeps: number[]
  clock: ReturnType<typeof fixedClock>
  provider: ReturnType<typeof createRateProvider>
}

async function setup(
  t: Test,
  opts: { policy?: RatePolicy; fake?: FakeNbpOptions; baseUrl?: string; timeoutMs?: number; maxRetries?: number } = {},
): Promise<Setup> {
  const nbp = await startFakeNbp(opts.fake)
  t.teardown(() => nbp.close())
  const store = openSqliteStore({ path: ':memory:' })
  t.teardown(() => store.close())
  const sleeps: number[] = []
  const clock = fixedClock(NOW_MS)
  const client = createNbpClient({
    baseUrl: opts.baseUrl ?? nbp.baseUrl,
    timeoutMs: opts.timeoutMs ?? 2_000,
    maxRetries: opts.maxRetries ?? 2,
    baseDelayMs: 1,
    sleep: async (ms) => {
      sleeps.push(ms)
    },
  })
  const provider = createRateProvider({ store, nbp: client, policy: opts.policy ?? 'previous-business-day', clock })
  return { nbp, store, sleeps, clock, provider }
}

function rateOf(t: Test, r: RateResolution): UsdPlnRate {
  if (!r.ok) {
    t.fail(`expected a rate, got: ${r.reason}`)
    throw new Error(r.reason)
  }
  return r.rate
}

function reasonOf(t: Test, r: RateResolution): string {
  if (r.ok) {
    t.fail(`expected no rate, got ${r.rate.rate}`)
    throw new Error('unexpected rate')
  }
  return r.reason
}

const rangeUrl = (start: string, end: string) => `/api/exchangerates/rates/a/usd/${start}/${end}/?format=json`

// Expected tables come from the Polish calendar, written out here, not from the code under test.
const previousBusinessDayCases = [
  { name: 'Monday uses Friday', usage: '2024-12-09', table: '2024-12-06', no: '237/A/NBP/2024', mid: 4.0341, rate: '4.0341' },
  { name: 'Monday uses Friday (2026)', usage: '2026-11-23', table: '2026-11-20', no: '226/A/NBP/2026' },
  { name: '12 Nov after the 11 Nov holiday', usage: '2026-11-12', table: '2026-11-10', no: '219/A/NBP/2026' },
  { name: 'Tuesday after Easter Monday', usage: '2026-04-07', table: '2026-04-03', no: '65/A/NBP/2026' },
  { name: 'after Christmas Eve, Christmas and Boxing Day (2025)', usage: '2025-12-27', table: '2025-12-23', no: '248/A/NBP/2025' },
  { name: 'Tuesday uses Monday', usage: '2026-11-24', table: '2026-11-23', no: '227/A/NBP/2026' },
]

for (const c of previousBusinessDayCases) {
  t.test(`previous-business-day: ${c.name}`, async (t) => {
    const { nbp, store, provider } = await setup(t, { fake: c.mid ? { mids: { [c.table]: c.mid } } : {} })
    const rate = rateOf(t, await provider.resolveUsdPlnRate(c.usage))
    t.equal(rate.effective_date, c.table)
    t.equal(rate.table_no, c.no)
    t.equal(rate.source, 'nbp')
    t.equal(rate.policy, 'previous-business-day')
    t.equal(rate.usage_date, c.usage)
    t.equal(rate.fetched_at, '2026-11-28T11:00:00.000Z')
    if (c.rate) t.equal(rate.rate, c.rate)
    t.match(rate.rate, /^\d\.\d{1,4}$/)
    // One request over D-10 .. D-1.
    const d = new Date(`${c.usage}T00:00:00Z`).getTime()
    const day = (n: number) => new Date(d + n * 86_400_000).toISOString().slice(0, 10)
    t.same(nbp.urls(), [rangeUrl(day(-10), day(-1))])
    t.same(await store.rates.get(c.usage), rate, 'stored as returned')
  })
}

t.test('same-day: a business day uses its own table', async (t) => {
  const { nbp, provider } = await setup(t, { policy: 'same-day' })
  const rate = rateOf(t, await provider.resolveUsdPlnRate('2026-11-10'))
  t.equal(rate.effective_date, '2026-11-10')
  t.equal(rate.table_no, '219/A/NBP/2026')
  t.equal(rate.policy, 'same-day')
  t.same(nbp.urls(), [rangeUrl('2026-10-31', '2026-11-10')])
})

t.test('same-day: a holiday uses the last table before it', async (t) => {
  const { provider } = await setup(t, { policy: 'same-day' })
  const rate = rateOf(t, await provider.resolveUsdPlnRate('2026-11-11'))
  t.equal(rate.effective_date, '2026-11-10')
})

t.test('an empty range is widened once, then the last table is used', async (t) => {
  // NBP silent since 5 Nov: D-10 .. D-1 holds no table, the wider range does.
  const { nbp, provider } = await setup(t, { fake: { lastPublished: '2026-11-05' } })
  const rate = rateOf(t, await provider.resolveUsdPlnRate('2026-11-23'))
  t.equal(rate.effective_date, '2026-11-05')
  t.same(nbp.urls(), [rangeUrl('2026-11-13', '2026-11-22'), rangeUrl('2026-10-23', '2026-11-22')])
})

t.test('no table even in the wider range: ok:false with the range said, nothing stored', async (t) => {
  const { nbp, store, provider, sleeps } = await setup(t, { fake: { lastPublished: '2026-10-01' } })
  const reason = reasonOf(t, await provider.resolveUsdPlnRate('2026-11-23'))
  t.match(reason, /no table A in 2026-10-23\.\.2026-11-22/)
  t.equal(nbp.requests.length, 2, 'a 404 is not retried')
  t.same(sleeps, [])
  t.equal(await store.rates.get('2026-11-23'), undefined)
})

t.test('a stored rate is reused without asking NBP again', async (t) => {
  const { nbp, provider } = await setup(t)
  const first = rateOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
  t.equal(nbp.requests.length, 1)
  nbp.setMode('error500')
  const again = rateOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
  t.same(again, first)
  t.equal(nbp.requests.length, 1, 'no second request')
})

t.test('concurrent resolutions of one date share one request', async (t) => {
  const { nbp, provider } = await setup(t)
  const [a, b] = await Promise.all([provider.resolveUsdPlnRate('2026-11-12'), provider.resolveUsdPlnRate('2026-11-12')])
  t.same(rateOf(t, a), rateOf(t, b))
  t.equal(nbp.requests.length, 1)
})

t.test('a manual rate is used as stored and never replaced by NBP', async (t) => {
  const { nbp, store, provider } = await setup(t)
  await store.rates.setManual({ usage_date: '2026-11-12', rate: '4.10', note: 'agreed with accounting', fetched_at: '2026-11-20T09:00:00.000Z' })
  const rate = rateOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
  t.equal(rate.source, 'manual')
  t.equal(rate.rate, '4.1')
  t.equal(rate.table_no, null)
  t.equal(nbp.requests.length, 0)
})

t.test('a manual rate set while NBP is being asked wins over the fetched one', async (t) => {
  const { nbp, store } = await setup(t)
  const base = createNbpClient({ baseUrl: nbp.baseUrl, timeoutMs: 2_000, maxRetries: 0 })
  // The admin's PUT lands between the "nothing stored" check and the NBP answer.
  const racing = {
    fetchUsdRates: async (start: string, end: string) => {
      const rates = await base.fetchUsdRates(start, end)
      await store.rates.setManual({ usage_date: '2026-11-12', rate: 4.2, fetched_at: '2026-11-28T10:59:00.000Z' })
      return rates
    },
  }
  const provider = createRateProvider({ store, nbp: racing, policy: 'previous-business-day', clock: fixedClock(NOW_MS) })
  const rate = rateOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
  t.equal(rate.source, 'manual')
  t.equal(rate.rate, '4.2')
  t.same(
    (await store.rates.list('2026-11-12', '2026-11-12')).map((r) => [r.source, r.rate]),
    [['manual', '4.2']],
  )
})

t.test('NBP faults resolve ok:false with a reason; nothing is stored; health says so', async (t) => {
  t.test('500 then success after one retry', async (t) => {
    const { nbp, provider, sleeps } = await setup(t)
    nbp.queue('error500')
    const rate = rateOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
    t.equal(rate.effective_date, '2026-11-10')
    t.equal(nbp.requests.length, 2)
    t.equal(sleeps.length, 1)
    const h = provider.health()
    t.equal(h.last_success_at, '2026-11-28T11:00:00.000Z')
    t.equal(h.last_rate, rate.rate)
    t.equal(h.last_rate_date, '2026-11-10')
    t.equal(h.last_error, null)
  })

  t.test('500 forever: bounded attempts', async (t) => {
    const { nbp, store, provider } = await setup(t, { fake: { mode: 'error500' }, maxRetries: 2 })
    const reason = reasonOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
    t.match(reason, /HTTP 500.*after 3 attempts/)
    t.equal(nbp.requests.length, 3)
    t.same(await store.rates.list('2026-01-01', '2026-12-31'), [])
    const h = provider.health()
    t.equal(h.last_error, reason)
    t.equal(h.last_error_at, '2026-11-28T11:00:00.000Z')
    t.equal(h.last_success_at, null)
    t.equal(h.last_rate, null)
  })

  t.test('connection refused', async (t) => {
    const port = await deadPort()
    const { store, provider } = await setup(t, { baseUrl: `http://127.0.0.1:${port}/api` })
    const reason = reasonOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
    t.match(reason, /ECONNREFUSED/)
    t.equal(await store.rates.get('2026-11-12'), undefined)
  })

  t.test('hang past the timeout gives up quickly', async (t) => {
    const { nbp, provider } = await setup(t, { fake: { mode: 'hang' }, timeoutMs: 80, maxRetries: 1 })
    const started = performance.now()
    const reason = reasonOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
    t.ok(performance.now() - started < 1_500)
    t.match(reason, /no answer within 80 ms/)
    t.equal(nbp.requests.length, 2)
  })

  t.test('garbage JSON', async (t) => {
    const { store, provider } = await setup(t, { fake: { mode: 'garbage' } })
    t.match(reasonOf(t, await provider.resolveUsdPlnRate('2026-11-12')), /not JSON/)
    t.equal(await store.rates.get('2026-11-12'), undefined)
  })

  t.test('valid JSON of the wrong shape', async (t) => {
    const { store, provider } = await setup(t, { fake: { mode: 'malformed' } })
    t.match(reasonOf(t, await provider.resolveUsdPlnRate('2026-11-12')), /unexpected shape/)
    t.equal(await store.rates.get('2026-11-12'), undefined)
  })

  t.test('a later call after recovery fills the rate', async (t) => {
    const { nbp, provider } = await setup(t, { fake: { mode: 'error500' }, maxRetries: 0 })
    reasonOf(t, await provider.resolveUsdPlnRate('2026-11-12'))
    nbp.setMode('ok')
    t.equal(rateOf(t, await provider.resolveUsdPlnRate('2026-11-12')).effective_date, '2026-11-10')
    const h = provider.health()
    t.ok(h.last_error !== null && h.last_success_at !== null)
  })
})

t.test('a rate that is not final yet is neither fetched nor stored', async (t) => {
  t.test('previous-business-day for tomorrow: no request at all', async (t) => {
    const { nbp, provider } = await setup(t)
    t.match(reasonOf(t, await provider.resolveUsdPlnRate('2026-11-30')), /cannot be known before 2026-11-29/)
    t.equal(nbp.requests.length, 0)
  })

  t.test("same-day for today before NBP has published today's table", async (t) => {
    // Monday 23 Nov, 10:00 Warsaw: Friday's table is the last one out.
    const { nbp, store, clock, provider } = await setup(t, { policy: 'same-day', fake: { lastPublished: '2026-11-20' } })
    clock.set(Date.parse('2026-11-23T09:00:00Z'))
    t.match(reasonOf(t, await provider.resolveUsdPlnRate('2026-11-23')), /no NBP table of 2026-11-23 yet/)
    t.equal(await store.rates.get('2026-11-23'), undefined)
    nbp.setLastPublished('2026-11-23')
    clock.set(Date.parse('2026-11-23T11:30:00Z'))
    const rate = rateOf(t, await provider.resolveUsdPlnRate('2026-11-23'))
    t.equal(rate.effective_date, '2026-11-23')
  })
})

t.test('an invalid usage date is ok:false, not an exception', async (t) => {
  const { nbp, provider } = await setup(t)
  t.match(reasonOf(t, await provider.resolveUsdPlnRate('2026-02-30')), /not a usage date/)
  t.equal(nbp.requests.length, 0)
})

t.test('PLN from a resolved rate is exact', async (t) => {
  const { provider } = await setup(t, { fake: { mids: { '2024-12-06': 4.0341 } } })
  const rate = rateOf(t, await provider.resolveUsdPlnRate('2024-12-09'))
  t.equal(rate.rate, '4.0341')
  // 1.3 USD × 4.0341 = 5.24433 PLN exactly (13 × 40341 = 524433), i.e. 5 244 330 000 nano-PLN.
  const pln = multiplyNano(toNano('1.300000000'), rate.rate)
  t.equal(pln, 5_244_330_000n)
  t.equal(nanoToDecimalText(pln), '5.244330000')
  // Exact ties at the ninth decimal round half to even: 20170.5 → 20170 and 60511.5 → 60512 nano-PLN.
  t.equal(multiplyNano(5_000n, rate.rate), 20_170n)
  t.equal(multiplyNano(15_000n, rate.rate), 60_512n)
})
