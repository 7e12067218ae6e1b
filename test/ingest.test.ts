// The ingest fast paths (src/ingest.ts) read the forms producers nearly always send without
// RegExp, Date or BigInt arithmetic. Each must give exactly what the general path gives for every
// input it accepts, and leave every other input (and every refusal, with its message) to it.
import t from 'tap'
import { parseTimestamp, parseTimestampGeneral, parseUtcTimestampFast, plainCostNano } from '../src/ingest.js'
import { parseDecimal, toNano } from '../src/money.js'
import { prng } from '../bench/lib/data.js'

const pad = (n: number, width: number) => String(n).padStart(width, '0')

t.test('timestamps: the fast path agrees with the general one, and takes the usual form', async (t) => {
  const random = prng(20261202)
  const int = (n: number) => Math.floor(random() * n)
  const cases: string[] = [
    '2026-11-21T00:00:12.345Z',
    '2026-11-21T00:00:12Z',
    '2024-02-29T23:59:59.999999999Z',
    '2025-02-29T10:00:00Z',
    '2100-02-29T10:00:00Z',
    '2000-02-29T10:00:00Z',
    '1999-12-31T23:59:59.999Z',
    '2026-11-21T24:00:00Z',
    '2026-11-21T23:60:00Z',
    '2026-11-21T23:59:60Z',
    '2026-13-01T00:00:00Z',
    '2026-00-01T00:00:00Z',
    '2026-11-00T00:00:00Z',
    '2026-11-21t00:00:12z',
    '2026-11-21 00:00:12Z',
    '2026-11-21T00:00:12.Z',
    '2026-11-21T00:00:12.1234567890Z',
    '2026-11-21T00:00:12+01:00',
    '2026-11-21T00:00:12',
    ' 2026-11-21T00:00:12Z',
    '2026-11-21T00:00:1xZ',
    '+02026-11-21T00:00:12Z',
  ]
  for (let i = 0; i < 5_000; i++) {
    const y = 1995 + int(110)
    const mo = 1 + int(13)
    const d = 1 + int(31)
    const fraction = int(11)
    let text = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(int(25), 2)}:${pad(int(61), 2)}:${pad(int(61), 2)}`
    if (fraction > 0) text += '.' + Array.from({ length: fraction - 1 }, () => int(10)).join('')
    text += 'Z'
    // One character in four cases replaced by a character the form does not allow there.
    if (int(4) === 0) {
      const at = int(text.length)
      text = text.slice(0, at) + ' -:.TZx+'[int(8)] + text.slice(at + 1)
    }
    cases.push(text)
  }
  let fast = 0
  for (const text of cases) {
    const general = parseTimestampGeneral(text)
    const quick = parseUtcTimestampFast(text)
    if (quick !== undefined) {
      fast += 1
      if (quick !== general) t.fail(`${text}: fast ${quick}, general ${general}`)
    }
    if (parseTimestamp(text) !== general) t.fail(`${text}: parseTimestamp ${parseTimestamp(text)}, general ${general}`)
  }
  t.ok(fast > 1_000, `the fast path took ${fast} of ${cases.length} cases`)
  t.ok(cases.length - fast > 1_000, 'and left the others to the general path')
  t.equal(parseUtcTimestampFast('2026-11-21T00:00:12.345Z'), Date.parse('2026-11-21T00:00:12.345Z'), 'what toISOString writes')
  t.equal(parseUtcTimestampFast('2026-11-21T00:00:12.5Z'), Date.parse('2026-11-21T00:00:12.500Z'), 'one fraction digit: tenths')
  t.equal(parseUtcTimestampFast('1999-12-31T23:59:59Z'), undefined, 'before 2000: the general path refuses it')
  t.match(parseTimestamp('1999-12-31T23:59:59Z'), /before 2000-01-01/)
})

t.test('costs: the plain-decimal path agrees with parseDecimal and toNano, and takes the usual forms', async (t) => {
  const random = prng(20261203)
  const int = (n: number) => Math.floor(random() * n)
  const digits = (n: number) => Array.from({ length: n }, () => int(10)).join('')
  const cases: Array<string | number> = ['0.001234000', '5', '5.', '.5', '0', '000000.1', '999999.999999999', '1000000', '-1', ' 1', '1 ', '1e-7', '1.2.3', '0x10', '']
  cases.push(0.30000000000000004, 1e-7, 123.456, 5, 0, -0, 1e21, 0.1 + 0.2, Number.MAX_SAFE_INTEGER, 999_999.999_999_999)
  for (let i = 0; i < 5_000; i++) {
    const text = `${digits(1 + int(8))}${int(3) === 0 ? '' : `.${digits(int(12))}`}`
    cases.push(text, Number(text))
  }
  let fast = 0
  for (const cost of cases) {
    const quick = plainCostNano(cost)
    let general: bigint | string
    try {
      general = toNano(parseDecimal(cost))
    } catch (e) {
      general = (e as Error).message
    }
    if (quick !== undefined) {
      fast += 1
      if (quick !== general) t.fail(`${JSON.stringify(cost)}: fast ${quick}, general ${general}`)
    }
  }
  t.ok(fast > 2_000, `the fast path took ${fast} of ${cases.length} cases`)
  t.equal(plainCostNano('0.001234000'), 1_234_000n)
  t.equal(plainCostNano(0.00015), 150_000n)
  t.equal(plainCostNano('0.0000000001'), undefined, 'past nine decimals: rounding is the general path’s')
})
