// Seeded, bounded property tests for every money path, on both sides of 2^53 nano-units and up to
// the 64-bit limit: ingest (cost text → nano), sums, markup, PLN, totals, JSON (number and string)
// and CSV. The oracle is written here with plain BigInt and string arithmetic (not src/money.ts);
// the last test drives the whole path over HTTP on a real SQLite file.
import t, { type Test } from 'tap'
import { DAILY } from '../src/measures.js'
import { addNano, multiplyNano, nanoToDecimalText, nanoToNumber, toNano, type Nano } from '../src/money.js'
import { buildTestApp, postEvents, runBatch } from './helpers/app.js'
import { type EventInput } from './helpers/events.js'

const INT64_MAX = 9_223_372_036_854_775_807n
const SAFE = 9_007_199_254_740_991n

/** mulberry32: a small seeded PRNG, so every run draws the same cases. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296
  }
  const int = (n: number) => Math.floor(next() * n)
  /** A bigint uniform enough in [0, max]. */
  const big = (max: bigint) => (BigInt(int(2 ** 31)) * 2n ** 62n + BigInt(int(2 ** 31)) * 2n ** 31n + BigInt(int(2 ** 31))) % (max + 1n)
  return { next, int, big }
}

// ---- the oracle ----------------------------------------------------------------------------

/** Decimal text (any number of decimals, optional sign) → nano-units, rounded half to even. */
function oracleNano(text: string): bigint {
  const negative = text.startsWith('-')
  const [int, frac = ''] = text.replace(/^[+-]/, '').split('.')
  const digits = BigInt(int! + frac.padEnd(9, '0').slice(0, 9))
  const rest = frac.slice(9)
  let n = digits
  if (rest !== '') {
    const half = '5'.padEnd(rest.length, '0')
    const cmp = rest > half ? 1 : rest < half ? -1 : 0
    if (cmp > 0 || (cmp === 0 && n % 2n === 1n)) n += 1n
  }
  return negative ? -n : n
}

/** nano × rate text, rounded half to even. */
function oracleTimes(nano: bigint, rate: string): bigint {
  const [int, frac = ''] = rate.split('.')
  const scale = 10n ** BigInt(frac.length)
  const product = nano * BigInt(int! + frac)
  const negative = product < 0n
  const abs = negative ? -product : product
  let q = abs / scale
  const r = abs % scale
  if (r * 2n > scale || (r * 2n === scale && q % 2n === 1n)) q += 1n
  return negative ? -q : q
}

/** nano → decimal text with exactly 9 decimals. */
function oracleText(nano: bigint): string {
  const negative = nano < 0n
  const digits = (negative ? -nano : nano).toString().padStart(10, '0')
  return `${negative ? '-' : ''}${digits.slice(0, -9)}.${digits.slice(-9)}`
}

/** An amount drawn across every magnitude that matters: tiny, around 2^53, up to int64. */
function drawNano(r: ReturnType<typeof prng>): bigint {
  switch (r.int(4)) {
    case 0:
      return BigInt(r.int(1_000_000_000))
    case 1:
      return SAFE - 1000n + r.big(2000n)
    case 2:
      return r.big(SAFE * 4n)
    default:
      return r.big(INT64_MAX)
  }
}

/** The same amount as a reader may hold it: a number when safe (sometimes), else a bigint. */
const asNano = (n: bigint, r: ReturnType<typeof prng>): Nano => (n <= SAFE && n >= -SAFE && r.int(2) === 0 ? Number(n) : n)

const CASES = 4_000

/** Compares many cases, failing the first few by name and then once with the count. */
function mismatches(t: Test) {
  let count = 0
  let cases = 0
  return {
    same(actual: unknown, expected: unknown, label: string) {
      cases++
      if (JSON.stringify(actual, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) === JSON.stringify(expected, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))) return
      count++
      if (count <= 5) t.fail(`${label}: got ${String(actual)}, expected ${String(expected)}`)
    },
    done(what: string) {
      t.ok(cases > 0, `${what}: cases were checked`)
      t.equal(count, 0, `${what}: ${cases} cases exact`)
    },
  }
}

t.test('ingest: cost text → nano-units, half-even, on both sides of 2^53', async (t) => {
  const r = prng(1)
  const check = mismatches(t)
  for (let i = 0; i < CASES; i++) {
    const units = r.big(20_000_000_000n) // up to 2e10 USD: past 2^53 and past int64 in nano-units
    const decimals = r.int(16)
    const frac = Array.from({ length: decimals }, () => r.int(10)).join('')
    // Ties on purpose: a 5 right after the ninth decimal, nothing after it.
    const tie = decimals > 9 && r.int(4) === 0 ? `${frac.slice(0, 9)}5` : frac
    const text = `${r.int(8) === 0 ? '-' : ''}${units}${tie ? `.${tie}` : ''}`
    check.same(toNano(text), oracleNano(text), text)
  }
  check.done('toNano')
})

t.test('a float sum from InfluxDB (InfluxQL, Flux) → nano-units: its shortest round-trip text, rounded once', async (t) => {
  const r = prng(6)
  const check = mismatches(t)
  /** The plain decimal of a JS number's shortest text (which may use an exponent). */
  const plain = (x: number) => {
    const [mantissa, exp = '0'] = String(x).split('e')
    const negative = mantissa!.startsWith('-')
    const [int, frac = ''] = mantissa!.replace('-', '').split('.')
    const shift = Number(exp)
    const digits = int! + frac
    const point = int!.length + shift
    const text =
      point <= 0 ? `0.${'0'.repeat(-point)}${digits}` : point >= digits.length ? digits + '0'.repeat(point - digits.length) : `${digits.slice(0, point)}.${digits.slice(point)}`
    return `${negative ? '-' : ''}${text}`
  }
  for (let i = 0; i < CASES; i++) {
    // Sums of float costs: from sub-nano noise to far past 2^53 nano-units (and 1e21, where String() turns to exponents).
    const x = r.next() * 10 ** (r.int(32) - 10)
    check.same(toNano(x), oracleNano(plain(x)), `float ${x}`)
  }
  check.same(toNano(0.1 + 0.2), 300_000_000n, '0.1 + 0.2')
  check.same(toNano(12345678.123456789), 12_345_678_123_456_790n, 'past 2^53: the double prints as 12345678.12345679')
  check.done('float sums')
})

t.test('sums: exact in doubles while safe, in BigInt past that, never rounded', async (t) => {
  const r = prng(2)
  const check = mismatches(t)
  let crossed = 0
  for (let i = 0; i < CASES; i++) {
    let sum: Nano = 0
    let oracle = 0n
    const parts = 1 + r.int(12)
    for (let p = 0; p < parts; p++) {
      // Near 2^53, so sums cross it often; sometimes negative.
      const n = (r.int(5) === 0 ? -1n : 1n) * (r.int(2) === 0 ? drawNano(r) % (SAFE / 2n) : SAFE / 3n + r.big(SAFE))
      sum = addNano(sum, asNano(n, r))
      oracle += n
    }
    check.same(BigInt(sum), oracle, `sum of ${parts}`)
    // A number result is always a safe integer (past 2^53 the sum is a bigint).
    if (typeof sum === 'number') check.same(Number.isSafeInteger(sum), true, `a number sum ${sum} is safe`)
    if (oracle > SAFE || oracle < -SAFE) crossed++
  }
  t.ok(crossed > CASES / 10, `${crossed} sums past 2^53`)
  check.done('addNano')
})

t.test('markup and PLN: amount × rate, half-even, up to the 64-bit range', async (t) => {
  const r = prng(3)
  const check = mismatches(t)
  const rateText = () => {
    const decimals = r.int(7)
    const frac = Array.from({ length: decimals }, () => r.int(10)).join('')
    return `${r.int(11)}${frac ? `.${frac}` : ''}`
  }
  for (let i = 0; i < CASES; i++) {
    const amount = drawNano(r)
    const markupRate = rateText()
    const plnRate = rateText()
    const markup = multiplyNano(asNano(amount, r), markupRate)
    check.same(markup, oracleTimes(amount, markupRate), `${amount} × ${markupRate}`)
    check.same(multiplyNano(markup, plnRate), oracleTimes(markup, plnRate), `${markup} × ${plnRate}`)
  }
  check.done('multiplyNano')
})

t.test('JSON numbers, JSON strings and CSV cells of any amount', async (t) => {
  const r = prng(4)
  const check = mismatches(t)
  const base = DAILY.fromValues(['2026-11-20', 1, 1, 0, 1, 0, 0, null, '1.3', null, null, 'm', 1])
  for (let i = 0; i < CASES; i++) {
    const n = (r.int(4) === 0 ? -1n : 1n) * drawNano(r)
    const held = asNano(n, r)
    const text = oracleText(n)
    check.same(nanoToDecimalText(held), text, `text of ${n}`)
    // The JSON number is the double nearest to the exact decimal: what parsing its text gives.
    check.same(nanoToNumber(held), Number(text), `number of ${n}`)
    const row = { ...base, raw_cost_nano_usd: held, markup_cost_nano_usd: held, markup_cost_nano_pln: held }
    const [, , , , , raw, markup, pln] = DAILY.toCsv(row)
    check.same([raw, markup, pln], [text, text, text], `CSV of ${n}`)
    const json = DAILY.toJson(row, 'string')
    check.same([json.raw_cost_usd, json.markup_cost_usd, json.markup_cost_pln], [text, text, text], `?money=string of ${n}`)
    check.same(DAILY.toJson(row, 'number').markup_cost_pln, Number(text), `JSON number of ${n}`)
  }
  check.done('JSON and CSV')
})

t.test('the whole path over HTTP: ingest, batch, every read as numbers, strings and CSV', async (t) => {
  const r = prng(5)
  const { app, db } = await buildTestApp(t)
  const days = ['2026-11-19', '2026-11-20']
  const clients = ['c0', 'c1', 'c2', 'c3', 'c4']
  const users = ['u0', 'u1']
  const models = ['m0', 'm1']
  const rateOf = new Map<string, string>()
  for (const day of days) {
    const rate = `${1 + r.int(9)}.${String(r.int(10_000)).padStart(4, '0')}`
    rateOf.set(day, rate)
    t.equal((await app.inject({ method: 'PUT', url: `/usage/exchange-rates/${day}`, payload: { rate } })).statusCode, 200)
  }
  const markupOf = new Map<string, string>()
  for (const c of clients) {
    const markup = `${1 + r.int(9)}.${String(r.int(1000)).padStart(3, '0')}`
    markupOf.set(c, markup)
    t.equal((await app.inject({ method: 'PUT', url: `/clients/${c}/pricing`, payload: { markup_rate: markup, effective_from: '2026-11-01' } })).statusCode, 201)
  }
  const events: EventInput[] = []
  for (const day of days) {
    for (const c of clients) {
      const records = 3 + r.int(20)
      for (let k = 0; k < records; k++) {
        // Mostly large amounts (each group's sum lands around 2^53 nano-units and past it), some tiny.
        const units = r.int(6) === 0 ? r.int(3) : 300_000 + r.int(700_000)
        const cost = `${units}.${String(r.int(1_000_000_000)).padStart(9, '0')}`
        events.push({
          request_id: `${day}-${c}-${k}`,
          client_org_id: c,
          external_user: users[r.int(users.length)]!,
          model: models[r.int(models.length)]!,
          input_tokens: r.int(1000),
          output_tokens: r.int(1000),
          cost_usd: cost,
          timestamp: `${day}T${String(8 + r.int(10)).padStart(2, '0')}:00:00Z`,
        })
      }
    }
  }
  t.equal((await postEvents(app, events)).statusCode, 200)
  const stored = db.$client.prepare('SELECT request_id, cost_nano_usd FROM usage_events').safeIntegers(true).all() as Array<{ request_id: string; cost_nano_usd: bigint }>
  const costOf = new Map(stored.map((e) => [e.request_id, e.cost_nano_usd]))
  t.equal(costOf.size, events.length)
  t.same(
    events.filter((e) => costOf.get(e.request_id) !== oracleNano(String(e.cost_usd))).map((e) => e.request_id),
    [],
    'every ingested cost stored to the nano-unit',
  )
  const runs = (await runBatch(app, { from: days[0], to: days[1] })).json().runs
  t.same(runs.map((x: { status: string }) => x.status), ['succeeded', 'succeeded'])

  // The oracle: each stored row priced from its own raw sum; reads sum those rows.
  type Money = { raw: bigint; markup: bigint; pln: bigint }
  const add = (into: Map<string, Money>, key: string, m: Money) => {
    const s = into.get(key) ?? { raw: 0n, markup: 0n, pln: 0n }
    into.set(key, { raw: s.raw + m.raw, markup: s.markup + m.markup, pln: s.pln + m.pln })
  }
  const priced = (raw: bigint, client: string, day: string): Money => {
    const markup = oracleTimes(raw, markupOf.get(client)!)
    return { raw, markup, pln: oracleTimes(markup, rateOf.get(day)!) }
  }
  const rawBy = new Map<string, bigint>()
  const keyed = (...parts: string[]) => JSON.stringify(parts)
  for (const e of events) {
    const day = e.timestamp.slice(0, 10)
    for (const key of [keyed('day', e.client_org_id, day), keyed('model', e.client_org_id, day, e.model), keyed('user', e.client_org_id, day, e.external_user!, e.model)]) {
      rawBy.set(key, (rawBy.get(key) ?? 0n) + oracleNano(String(e.cost_usd)))
    }
  }
  const dayRows = new Map<string, Money>()
  const modelSums = new Map<string, Money>()
  const userSums = new Map<string, Money>()
  const clientSums = new Map<string, Money>()
  for (const [key, raw] of rawBy) {
    const [kind, client, day, a, b] = JSON.parse(key) as string[]
    const m = priced(raw, client!, day!)
    if (kind === 'day') {
      dayRows.set(keyed(client!, day!), m)
      add(clientSums, client!, m)
    } else if (kind === 'model') add(modelSums, keyed(client!, a!), m)
    else add(userSums, keyed(client!, a!, b!), m)
  }
  t.ok([...dayRows.values()].some((m) => m.raw > SAFE), 'some stored rows are past 2^53 nano-units')
  t.ok([...dayRows.values()].some((m) => m.raw < SAFE && m.pln > SAFE), 'some cross 2^53 only after markup and PLN')

  const money = (m: Money) => ({ raw_cost_usd: oracleText(m.raw), markup_cost_usd: oracleText(m.markup), markup_cost_pln: oracleText(m.pln) })
  const asNumbers = (m: Money) => ({ raw_cost_usd: Number(oracleText(m.raw)), markup_cost_usd: Number(oracleText(m.markup)), markup_cost_pln: Number(oracleText(m.pln)) })
  const total = (ms: Iterable<Money>) => {
    const s = { raw: 0n, markup: 0n, pln: 0n }
    for (const m of ms) {
      s.raw += m.raw
      s.markup += m.markup
      s.pln += m.pln
    }
    return s
  }
  const range = `from=${days[0]}&to=${days[1]}`
  let compared = 0
  for (const c of clients) {
    const daily = (await app.inject({ url: `/usage/clients/${c}/daily?${range}&money=string` })).json()
    const dailyNumbers = (await app.inject({ url: `/usage/clients/${c}/daily?${range}` })).json()
    const csvLines = (await app.inject({ url: `/usage/clients/${c}/daily?${range}&format=csv` })).body.split('\r\n').slice(1, -1)
    const expectedDays = days.filter((d) => dayRows.has(keyed(c, d)))
    t.equal(daily.days.length, expectedDays.length)
    for (const [i, d] of expectedDays.entries()) {
      const m = dayRows.get(keyed(c, d))!
      t.match(daily.days[i], { usage_date: d, ...money(m) }, `${c} ${d} as strings`)
      t.match(dailyNumbers.days[i], { usage_date: d, ...asNumbers(m) }, `${c} ${d} as numbers`)
      t.equal(csvLines[i]!.split(',').slice(5, 8).join(','), Object.values(money(m)).join(','), `${c} ${d} in CSV`)
      compared++
    }
    const clientTotal = total(expectedDays.map((d) => dayRows.get(keyed(c, d))!))
    t.match(daily.totals, money(clientTotal), `${c} daily totals`)

    const modelsRead = (await app.inject({ url: `/usage/clients/${c}/models?${range}&money=string` })).json()
    const ownKeys = (sums: Map<string, unknown>) => [...sums.keys()].filter((k) => JSON.parse(k)[0] === c).length
    t.equal(modelsRead.models.length, ownKeys(modelSums), `${c}: one row per model`)
    for (const row of modelsRead.models) t.match(row, money(modelSums.get(keyed(c, row.model))!), `${c}/${row.model}`)
    t.match(modelsRead.totals, money(total([...modelSums].filter(([k]) => JSON.parse(k)[0] === c).map(([, m]) => m))))
    const usersRead = (await app.inject({ url: `/usage/clients/${c}/users?${range}&money=string` })).json()
    t.equal(usersRead.users.flatMap((u: { models: unknown[] }) => u.models).length, ownKeys(userSums), `${c}: one row per user and model`)
    for (const u of usersRead.users) {
      for (const row of u.models) t.match(row, money(userSums.get(keyed(c, u.external_user, row.model))!), `${c}/${u.external_user}/${row.model}`)
    }
    const summary = (await app.inject({ url: `/usage/clients/${c}/summary?month=2026-11&money=string` })).json()
    t.match(summary.totals, money(clientTotal), `${c} month totals`)
  }
  t.ok(compared >= clients.length, 'every client had rows to compare')
  const all = (await app.inject({ url: `/usage/clients?${range}&money=string` })).json()
  t.equal(all.clients.length, clientSums.size, 'one row per client')
  for (const row of all.clients) t.match(row, money(clientSums.get(row.client_org_id)!), `${row.client_org_id} in /usage/clients`)
  t.match(all.totals, money(total(clientSums.values())), 'totals over every client')
})
