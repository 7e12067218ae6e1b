// Exact money. Amounts are integers in nano-units (1e-9 USD or PLN); rates (markup, USD/PLN) are
// exact decimals. Nothing here ever adds or multiplies a float unless every step is provably exact.

export const NANO_DIGITS = 9
const NANO_PER_UNIT = 10n ** BigInt(NANO_DIGITS)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
/** The range of a 64-bit signed integer: what an SQLite INTEGER column holds. */
export const INT64_MAX = 2n ** 63n - 1n
export const INT64_MIN = -(2n ** 63n)

/**
 * An amount in nano-units: a number only while it is a safe integer (|n| < 2^53, so exact), a
 * bigint otherwise (or whenever it was computed in BigInt). Reads and sums stay in doubles in the
 * common case and switch to BigInt exactly where a double would round.
 */
export type Nano = number | bigint

/** An amount that a summary column (64-bit signed integer) cannot hold. */
export class MoneyRangeError extends RangeError {
  override name = 'MoneyRangeError'
}

/** An exact decimal: value = units / 10^scale. */
export interface Decimal {
  readonly units: bigint
  readonly scale: number
}

const DECIMAL_TEXT = /^([+-]?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$|^([+-]?)\.(\d+)(?:[eE]([+-]?\d+))?$/
/** Exponents beyond this are refused rather than expanded (1e400 is no price). */
const MAX_EXPONENT = 30

export class DecimalError extends Error {
  override name = 'DecimalError'
}

/**
 * Parses a decimal given as text ("0.000000150", "4.0341", "1e-7") or as a JSON number.
 * A number is read through its shortest round-trip text (String(x)), i.e. the value the
 * producer wrote, so 0.30000000000000004 stays that and is rounded later, not re-binarised.
 */
export function parseDecimal(input: string | number): Decimal {
  let text: string
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new DecimalError(`not a finite number: ${input}`)
    text = String(input)
  } else {
    text = input.trim()
  }
  const m = DECIMAL_TEXT.exec(text)
  if (!m) throw new DecimalError(`not a decimal: ${JSON.stringify(String(input))}`)
  const sign = m[1] ?? m[5] ?? ''
  const intPart = m[2] ?? '0'
  const fracPart = m[3] ?? m[6] ?? ''
  const expText = m[4] ?? m[7]
  const exponent = expText === undefined ? 0 : Number(expText)
  if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > MAX_EXPONENT) {
    throw new DecimalError(`exponent out of range: ${JSON.stringify(String(input))}`)
  }
  let units = BigInt(intPart + fracPart)
  let scale = fracPart.length - exponent
  if (scale < 0) {
    units *= 10n ** BigInt(-scale)
    scale = 0
  }
  if (sign === '-') units = -units
  return normalize({ units, scale })
}

/** Drops trailing zeros so that equal values have one representation. */
function normalize(d: Decimal): Decimal {
  let { units, scale } = d
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n
    scale -= 1
  }
  return { units, scale }
}

/** Canonical text of a decimal ("1.3", "4.0341", "0.00000015"); at least one integer digit. */
export function formatDecimal(d: Decimal): string {
  const negative = d.units < 0n
  const digits = (negative ? -d.units : d.units).toString().padStart(d.scale + 1, '0')
  const intPart = digits.slice(0, digits.length - d.scale)
  const fracPart = digits.slice(digits.length - d.scale)
  return `${negative ? '-' : ''}${intPart}${fracPart ? `.${fracPart}` : ''}`
}

/** Canonical text for a decimal input ("1.30" → "1.3"); throws DecimalError on bad input. */
export function canonicalDecimal(input: string | number): string {
  return formatDecimal(parseDecimal(input))
}

/** numerator / denominator rounded half to even; denominator > 0. */
export function divRoundHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive')
  const negative = numerator < 0n
  const n = negative ? -numerator : numerator
  let q = n / denominator
  const r = n % denominator
  const twice = r * 2n
  if (twice > denominator || (twice === denominator && q % 2n === 1n)) q += 1n
  return negative ? -q : q
}

/** A decimal rounded half-even to `digits` decimal places, as units of 10^-digits. */
export function roundToScale(d: Decimal, digits: number): bigint {
  if (d.scale <= digits) return d.units * 10n ** BigInt(digits - d.scale)
  return divRoundHalfEven(d.units, 10n ** BigInt(d.scale - digits))
}

/** A decimal amount (USD or PLN) → nano-units, rounded half-even to 9 decimals. */
export function toNano(input: string | number | Decimal): bigint {
  const d = typeof input === 'object' ? input : parseDecimal(input)
  return roundToScale(d, NANO_DIGITS)
}

/**
 * A batch day prices every summary row with the same one or two rate texts: parse each text once.
 * Decimals are immutable, so sharing them is safe; the cache is bounded because rates are data.
 */
const parsedRates = new Map<string, Decimal>()
const MAX_PARSED_RATES = 1_000

function parsedRate(text: string): Decimal {
  let d = parsedRates.get(text)
  if (!d) {
    d = parseDecimal(text)
    if (parsedRates.size >= MAX_PARSED_RATES) parsedRates.clear()
    parsedRates.set(text, d)
  }
  return d
}

/** amountNano × rate, rounded half-even back to nano-units. */
export function multiplyNano(amountNano: Nano, rate: Decimal | string): bigint {
  const r = typeof rate === 'string' ? parsedRate(rate) : rate
  const denominator = 10n ** BigInt(r.scale)
  const amount = BigInt(amountNano)
  const small = smallMultiplyNano(amount, r.units, denominator)
  return small ?? divRoundHalfEven(amount * r.units, denominator)
}

/**
 * The same product and rounding in doubles, when every intermediate is an integer below 2^53 and
 * so exact: a batch day prices hundreds of thousands of rows, and BigInt arithmetic allocates at
 * every step. Null when the operands are too large (then the BigInt path decides).
 */
function smallMultiplyNano(amountNano: bigint, units: bigint, denominator: bigint): bigint | null {
  const negative = amountNano < 0n
  const a = negative ? -amountNano : amountNano
  const u = units < 0n ? -units : units
  if (a > MAX_SAFE || u > MAX_SAFE || denominator > MAX_SAFE) return null
  const an = Number(a)
  const un = Number(u)
  const d = Number(denominator)
  // a × u must stay below 2^53 to be exact; 2 × remainder < 2 × d is then exact too.
  if (un !== 0 && an > Number.MAX_SAFE_INTEGER / un) return null
  const n = an * un
  // q × d below stays within n + d: keep that exact as well.
  if (n > Number.MAX_SAFE_INTEGER - d) return null
  let q = Math.floor(n / d)
  // n / d is rounded once by the division: put q back on the exact quotient.
  let rem = n - q * d
  if (rem < 0) {
    q -= 1
    rem += d
  } else if (rem >= d) {
    q += 1
    rem -= d
  }
  if (rem * 2 > d || (rem * 2 === d && q % 2 === 1)) q += 1
  const productNegative = negative !== units < 0n
  return BigInt(productNegative ? -q : q)
}

/** Nano-units → exact decimal text with 9 decimals ("0.000000150"), for CSV, logs and `?money=string`. */
export function nanoToDecimalText(nano: Nano): string {
  if (typeof nano === 'number' && Number.isSafeInteger(nano)) {
    // For a safe integer the remainder is exact, and so is the quotient of the exact multiple of 1e9
    // left after taking it away (a division whose exact result is representable is not rounded).
    const abs = Math.abs(nano)
    const remainder = abs % 1e9
    const fraction = String(remainder)
    return `${nano < 0 ? '-' : ''}${(abs - remainder) / 1e9}.${'000000000'.slice(fraction.length)}${fraction}`
  }
  const n = BigInt(nano)
  const negative = n < 0n
  const abs = negative ? -n : n
  const intPart = abs / NANO_PER_UNIT
  const fracPart = (abs % NANO_PER_UNIT).toString().padStart(NANO_DIGITS, '0')
  return `${negative ? '-' : ''}${intPart}.${fracPart}`
}

/**
 * Nano-units → a JSON number. The decimal text is parsed by the platform, which yields the double
 * nearest to it; below 1e15 nano-units (one million) that double prints back as the same decimal.
 */
export function nanoToNumber(nano: Nano): number {
  // For a safe integer n, n / 1e9 is one correctly rounded division of two exact doubles: the double
  // nearest to the exact decimal, which is what parsing the decimal text yields, without the text.
  if (typeof nano === 'number') {
    if (Number.isSafeInteger(nano)) return nano / 1e9
  } else if (nano <= MAX_SAFE && nano >= -MAX_SAFE) {
    return Number(nano) / 1e9
  }
  return Number(nanoToDecimalText(nano))
}

/** An amount in the JSON form a read asked for: a number (at most 9 decimals) or exact decimal text. */
export function nanoToJson(nano: Nano, format: MoneyFormat): number | string {
  return format === 'string' ? nanoToDecimalText(nano) : nanoToNumber(nano)
}

/** How reads answer money: JSON numbers (the default) or exact decimal strings (`?money=string`). */
export type MoneyFormat = 'number' | 'string'

/**
 * a + b, exact. Two safe integers are added as doubles: a correctly rounded sum whose magnitude is
 * at most 2^53 - 1 is the exact sum (it is representable), and an exact sum beyond that cannot round
 * back into the safe range, so a safe result proves the double path exact. Otherwise BigInt.
 */
export function addNano(a: Nano, b: Nano): Nano {
  if (typeof a === 'number') {
    if (typeof b === 'number') {
      const sum = a + b
      if (Number.isSafeInteger(sum)) return sum
    }
    return BigInt(a) + BigInt(b)
  }
  return typeof b === 'bigint' ? a + b : a + BigInt(b)
}

/** a + b where null (an amount not known yet, e.g. PLN without a rate) makes the sum null. */
export function addNullableNano(a: Nano | null, b: Nano | null): Nano | null {
  return a === null || b === null ? null : addNano(a, b)
}

/**
 * The nano amount of an SQLite integer read as a safe number, or beyond 2^53 as decimal text, or
 * (a sum too large for SQLite's 64-bit SUM) as "units:nanos", the sums of its whole units and of
 * its nano-unit remainders (db/summary-reads.ts).
 */
export function nanoFromSql(value: number | bigint | string): Nano {
  if (typeof value !== 'string') return value
  const colon = value.indexOf(':')
  return colon < 0 ? BigInt(value) : BigInt(value.slice(0, colon)) * NANO_PER_UNIT + BigInt(value.slice(colon + 1))
}

/**
 * An amount as bound into a summary column: a number while safe, a bigint up to the 64-bit limit.
 * Beyond ±(2^63 - 1) nothing can store it exactly: refused, naming what overflowed.
 */
export function nanoToStored(nano: Nano, column: string): number | bigint {
  if (typeof nano === 'number') {
    if (Number.isSafeInteger(nano)) return nano
    throw new MoneyRangeError(`${column} is not an integer nano amount: ${nano}`)
  }
  if (nano > INT64_MAX || nano < INT64_MIN) {
    throw new MoneyRangeError(
      `${column} of ${nano} nano-units (${nanoToDecimalText(nano)}) is outside what a 64-bit summary column holds (±${INT64_MAX} nano-units)`,
    )
  }
  return nano >= -MAX_SAFE && nano <= MAX_SAFE ? Number(nano) : nano
}
