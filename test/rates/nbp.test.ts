import t, { type Test } from 'tap'
import { NbpError, createNbpClient, type NbpClientOptions } from '../../src/rates/nbp.js'
import { deadPort, startFakeNbp, type FakeNbp } from '../helpers/fake-nbp.js'

async function fake(t: Test, options?: Parameters<typeof startFakeNbp>[0]): Promise<FakeNbp> {
  const server = await startFakeNbp(options)
  t.teardown(() => server.close())
  return server
}

function client(baseUrl: string, sleeps: number[], overrides: Partial<NbpClientOptions> = {}) {
  return createNbpClient({
    baseUrl,
    timeoutMs: 2_000,
    maxRetries: 2,
    sleep: async (ms) => {
      sleeps.push(ms)
    },
    random: () => 0.5,
    baseDelayMs: 10,
    ...overrides,
  })
}

async function rejection(p: Promise<unknown>): Promise<NbpError> {
  try {
    await p
  } catch (e) {
    if (e instanceof NbpError) return e
    throw e
  }
  throw new Error('expected an NbpError, got a result')
}

t.test('asks for the exact NBP path with Accept: application/json and returns business days ascending', async (t) => {
  const nbp = await fake(t, { mids: { '2024-12-06': 4.0341 } })
  const rates = await client(nbp.baseUrl, []).fetchUsdRates('2024-11-29', '2024-12-08')
  t.same(nbp.urls(), ['/api/exchangerates/rates/a/usd/2024-11-29/2024-12-08/?format=json'])
  t.equal(nbp.requests[0]!.accept, 'application/json')
  t.same(
    rates.map((r) => r.effectiveDate),
    ['2024-11-29', '2024-12-02', '2024-12-03', '2024-12-04', '2024-12-05', '2024-12-06'],
  )
  // 237/A/NBP/2024 of 2024-12-06 is NBP's real table number: it checks the fake's holiday calendar too.
  t.same(rates.at(-1), { no: '237/A/NBP/2024', effectiveDate: '2024-12-06', mid: '4.0341' })
})

t.test('404 "Brak danych" is an empty range, asked once', async (t) => {
  const nbp = await fake(t)
  const sleeps: number[] = []
  t.same(await client(nbp.baseUrl, sleeps).fetchUsdRates('2026-12-24', '2026-12-27'), [])
  t.equal(nbp.requests.length, 1)
  t.same(sleeps, [])
})

t.test('400 and a 404 that is not NBP\'s "no data" are errors, never retried', async (t) => {
  const nbp = await fake(t)
  const sleeps: number[] = []
  const c = client(nbp.baseUrl, sleeps)
  const wrongBase = client(`${nbp.baseUrl}/v2`, sleeps)
  const notFound = await rejection(wrongBase.fetchUsdRates('2026-11-01', '2026-11-10'))
  t.equal(notFound.code, 'NBP_HTTP')
  t.equal(notFound.status, 404)
  t.equal(notFound.attempts, 1)
  t.equal(nbp.requests.length, 1)

  // The client refuses over-long ranges itself; a 400 from the server is reached with a fetch that lies.
  await t.rejects(c.fetchUsdRates('2026-01-01', '2026-04-30'), RangeError)
  const badRequest = await rejection(
    client('http://nbp.invalid/api', sleeps, {
      fetch: async () => new Response('400 BadRequest - Błędny zakres dat / Invalid date range', { status: 400 }),
    }).fetchUsdRates('2026-11-01', '2026-11-10'),
  )
  t.equal(badRequest.status, 400)
  t.equal(badRequest.attempts, 1)
  t.match(badRequest.message, /Invalid date range/)
  t.same(sleeps, [])
})

t.test('the fake answers 400 as NBP does for a range over 93 days or a bad date', async (t) => {
  const nbp = await fake(t)
  const over = await fetch(`${nbp.baseUrl}/exchangerates/rates/a/usd/2026-01-01/2026-04-30/?format=json`)
  t.equal(over.status, 400)
  t.match(await over.text(), /Limit of 93 days has been exceeded/)
  const bad = await fetch(`${nbp.baseUrl}/exchangerates/rates/a/usd/2026-02-30/2026-03-05/?format=json`)
  t.equal(bad.status, 400)
  await bad.text()
  const empty = await fetch(`${nbp.baseUrl}/exchangerates/rates/a/usd/2026-11-01/2026-11-01/?format=json`)
  t.equal(empty.status, 404)
  t.match(empty.headers.get('content-type'), /^text\/plain/)
  t.equal(await empty.text(), '404 NotFound - Not Found - Brak danych')
})

t.test('500 then success: retried after a jittered backoff', async (t) => {
  const nbp = await fake(t)
  nbp.queue('error500')
  const sleeps: number[] = []
  const rates = await client(nbp.baseUrl, sleeps).fetchUsdRates('2026-11-13', '2026-11-22')
  t.equal(rates.at(-1)?.effectiveDate, '2026-11-20')
  t.equal(nbp.requests.length, 2)
  // Full jitter: random() 0.5 × cap 10 ms for the first retry.
  t.same(sleeps, [5])
})

t.test('500 forever: maxRetries + 1 attempts, exponential caps, then an error', async (t) => {
  const nbp = await fake(t, { mode: 'error500' })
  const sleeps: number[] = []
  const e = await rejection(client(nbp.baseUrl, sleeps, { maxRetries: 3, random: () => 0.999 }).fetchUsdRates('2026-11-13', '2026-11-22'))
  t.equal(e.code, 'NBP_HTTP')
  t.equal(e.status, 500)
  t.equal(e.attempts, 4)
  t.equal(nbp.requests.length, 4)
  t.same(sleeps, [9, 19, 39])
})

t.test('connection refused: bounded retries, network error', async (t) => {
  const port = await deadPort()
  const sleeps: number[] = []
  const e = await rejection(client(`http://127.0.0.1:${port}/api`, sleeps).fetchUsdRates('2026-11-13', '2026-11-22'))
  t.equal(e.code, 'NBP_NETWORK')
  t.equal(e.attempts, 3)
  t.match(e.message, /ECONNREFUSED/)
})

t.test('a hanging server is cut off by the per-attempt timeout', async (t) => {
  const nbp = await fake(t, { mode: 'hang' })
  const started = performance.now()
  // 400 ms per attempt: long enough that each attempt's request reaches the fake server even on a
  // loaded machine (at 100 ms the second one was sometimes cut before it arrived); a hang without
  // the timeout would last until the test's own timeout.
  const e = await rejection(client(nbp.baseUrl, [], { timeoutMs: 400, maxRetries: 1 }).fetchUsdRates('2026-11-13', '2026-11-22'))
  const elapsedMs = performance.now() - started
  t.equal(e.code, 'NBP_TIMEOUT')
  t.equal(e.attempts, 2)
  t.equal(nbp.requests.length, 2)
  t.ok(elapsedMs >= 800 && elapsedMs < 10_000, `gave up after ${Math.round(elapsedMs)} ms`)
})

t.test('garbage and malformed bodies are errors, not rates, and not retried', async (t) => {
  const nbp = await fake(t, { mode: 'garbage' })
  const c = client(nbp.baseUrl, [])
  const garbage = await rejection(c.fetchUsdRates('2026-11-13', '2026-11-22'))
  t.equal(garbage.code, 'NBP_INVALID_RESPONSE')
  t.match(garbage.message, /not JSON/)
  nbp.setMode('malformed')
  const malformed = await rejection(c.fetchUsdRates('2026-11-13', '2026-11-22'))
  t.equal(malformed.code, 'NBP_INVALID_RESPONSE')
  t.match(malformed.message, /unexpected shape/)
  t.equal(nbp.requests.length, 2)
})

t.test('well-formed JSON with impossible content is refused', async (t) => {
  const answer = (rates: unknown[]) => async () =>
    new Response(JSON.stringify({ table: 'A', currency: 'dolar amerykański', code: 'USD', rates }), { status: 200 })
  const cases: [string, unknown[]][] = [
    ['zero mid', [{ no: '219/A/NBP/2026', effectiveDate: '2026-11-10', mid: 0 }]],
    ['negative mid', [{ no: '219/A/NBP/2026', effectiveDate: '2026-11-10', mid: -4.1 }]],
    ['date outside the range', [{ no: '219/A/NBP/2026', effectiveDate: '2026-12-10', mid: 4.1 }]],
    ['impossible date', [{ no: '219/A/NBP/2026', effectiveDate: '2026-11-31', mid: 4.1 }]],
    ['bad table number', [{ no: '219/B/NBP/2026', effectiveDate: '2026-11-10', mid: 4.1 }]],
    ['table of another year', [{ no: '219/A/NBP/2025', effectiveDate: '2026-11-10', mid: 4.1 }]],
    [
      'descending',
      [
        { no: '219/A/NBP/2026', effectiveDate: '2026-11-10', mid: 4.1 },
        { no: '218/A/NBP/2026', effectiveDate: '2026-11-09', mid: 4.1 },
      ],
    ],
  ]
  for (const [name, rates] of cases) {
    const e = await rejection(client('http://nbp.invalid/api', [], { fetch: answer(rates) }).fetchUsdRates('2026-11-01', '2026-11-30'))
    t.equal(e.code, 'NBP_INVALID_RESPONSE', name)
  }
})
