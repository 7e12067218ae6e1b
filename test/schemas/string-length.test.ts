// useFastStringLength (src/schemas/string-length.ts) answers exactly as ajv's own minLength and
// maxLength: the same validity and the same errors, for strings of every length around each bound,
// built of ASCII, other BMP characters, surrogate pairs and lone surrogates.
import t from 'tap'
import { Ajv } from 'ajv'
import { useFastStringLength } from '../../src/schemas/string-length.js'
import { prng } from '../../bench/lib/data.js'

const PIECES = ['a', 'ż', '€', '😀', '\uD83D', '\uDE00', '𝄞']
const options = { allErrors: true, strict: false, code: { source: true } }
const schemas = [0, 1, 2, 3, 5, 64, 200].flatMap((n) => [
  { type: 'string', maxLength: n },
  { type: 'string', minLength: n },
  { type: 'string', minLength: Math.floor(n / 2), maxLength: n },
])

t.test('the same answers and errors as ajv, string by string', async (t) => {
  const random = prng(7)
  const strings: string[] = ['']
  for (let i = 0; i < 3_000; i++) {
    const target = Math.floor(random() * 450)
    let s = ''
    while (s.length < target) s += PIECES[Math.floor(random() * PIECES.length)]
    strings.push(s)
  }
  t.ok(schemas.length > 0 && strings.length > 1)
  let compared = 0
  let refusedByBoth = 0
  for (const schema of schemas) {
    const ajvOwn = new Ajv(options).compile(schema)
    const fast = useFastStringLength(new Ajv(options)).compile(schema)
    t.match(fast.source?.validateCode, /\.length [<>] /, `${JSON.stringify(schema)}: the length is looked at first`)
    for (const s of strings) {
      const expected = ajvOwn(s)
      if (fast(s) !== expected || JSON.stringify(fast.errors) !== JSON.stringify(ajvOwn.errors)) {
        t.fail(`${JSON.stringify(schema)} on ${JSON.stringify(s)}: ${JSON.stringify(fast.errors)} vs ${JSON.stringify(ajvOwn.errors)}`)
      }
      compared += 1
      if (!expected) refusedByBoth += 1
    }
  }
  t.equal(compared, schemas.length * strings.length)
  t.ok(refusedByBoth > 1_000 && refusedByBoth < compared - 1_000, `both answers occur (${refusedByBoth} of ${compared} refused)`)
})

t.test('strings that only counting settles: between the bounds in UTF-16 units', async (t) => {
  const fast = useFastStringLength(new Ajv(options)).compile({ type: 'string', minLength: 3, maxLength: 4 })
  t.ok(fast('😀😀😀😀'), '4 code points in 8 units: within maxLength 4')
  t.notOk(fast('😀😀😀😀a'), '5 code points in 9 units: over')
  t.match(fast.errors, [{ keyword: 'maxLength', message: 'must NOT have more than 4 characters', params: { limit: 4 } }])
  t.ok(fast('😀😀😀'), '3 code points in 6 units: meets minLength 3')
  t.notOk(fast('😀😀'), '2 code points in 4 units: under')
  t.match(fast.errors, [{ keyword: 'minLength', message: 'must NOT have fewer than 3 characters', params: { limit: 3 } }])
})
