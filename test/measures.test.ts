// The column descriptors of src/measures.ts against the tables they describe, and the functions
// compiled from them: one definition of the priced row, so a column added there reaches staging,
// SQL, JSON, CSV and sums, and nothing can disagree with the schema unnoticed.
import t from 'tap'
import { getTableColumns } from 'drizzle-orm'
import { clientDailyUsage, clientModelDailyUsage, clientUserDailyUsage } from '../src/db/schema.js'
import {
  CLIENT_SUMS,
  DAILY,
  DAILY_ROW,
  MEASURES,
  MODEL_SUMS,
  RAW_MEASURES,
  STORED_MEASURES,
  TOTALS,
  USER_MODEL_SUMS,
  USER_SUMS,
  addMeasures,
  compileRow,
  sumMeasures,
  zeroMeasures,
  zeroRawMeasures,
  type Column,
  type Measures,
} from '../src/measures.js'

const tables = { client_daily_usage: clientDailyUsage, client_user_daily_usage: clientUserDailyUsage, client_model_daily_usage: clientModelDailyUsage }

t.test('every stored column is a column of each summary table, with its SQL type and nullability', async (t) => {
  let checked = 0
  for (const [name, table] of Object.entries(tables)) {
    const columns = getTableColumns(table) as Record<string, { getSQLType(): string; notNull: boolean }>
    for (const c of STORED_MEASURES as readonly Column[]) {
      const column = columns[c.key]
      if (!column) {
        t.fail(`${name}.${c.key} does not exist`)
        continue
      }
      t.equal(column.getSQLType(), c.kind === 'count' || c.kind === 'money' ? 'integer' : 'text', `${name}.${c.key} type`)
      t.equal(column.notNull, !c.nullable, `${name}.${c.key} nullability`)
      checked++
    }
  }
  t.equal(checked, STORED_MEASURES.length * 3)
  const daily = getTableColumns(clientDailyUsage) as Record<string, unknown>
  t.same(
    DAILY_ROW.filter((c) => !(c.key in daily)).map((c) => c.key),
    [],
    'the daily read answers columns of client_daily_usage',
  )
})

t.test('the JSON keys of each row are its CSV header, in order', async (t) => {
  for (const row of [DAILY, CLIENT_SUMS, MODEL_SUMS, USER_SUMS, USER_MODEL_SUMS, TOTALS]) {
    const values = row.columns.map((c) => (c.kind === 'money' ? 1n : c.kind === 'count' ? 1 : c.kind === 'rate' ? '1.5' : 'x'))
    const r = row.fromValues(values)
    t.ok(row.header.length > 0)
    t.same(Object.keys(row.toJson(r as never, 'number')), row.header)
    t.same(Object.keys(row.toJson(r as never, 'string')), row.header)
    t.equal(row.toCsv(r as never).length, row.header.length)
  }
})

t.test('addMeasures adds every measure: counts, money exactly, PLN null as soon as one part lacks it', async (t) => {
  const part = (n: number, pln: bigint | null): Measures => ({
    total_tokens: n,
    input_tokens: n,
    output_tokens: n,
    total_requests: n,
    raw_cost_nano_usd: BigInt(n) * 2n ** 53n,
    markup_cost_nano_usd: n,
    markup_cost_nano_pln: pln,
  })
  const sum = sumMeasures([part(1, 5n), part(2, 7n)])
  t.same(sum, { ...part(3, 12n), raw_cost_nano_usd: 3n * 2n ** 53n })
  for (const c of MEASURES) t.not(sum[c.key], zeroMeasures()[c.key], `${c.key} was added`)
  t.equal(sumMeasures([part(1, 5n), part(2, null)]).markup_cost_nano_pln, null)
  t.same(sumMeasures([]), zeroMeasures(), 'nothing sums to zero, PLN included')
  // Raw sums carry no priced amounts, and get none.
  const raw = addMeasures(zeroRawMeasures(), { total_tokens: 1, input_tokens: 1, output_tokens: 0, total_requests: 1, raw_cost_nano_usd: 4 })
  t.same(Object.keys(raw), RAW_MEASURES.map((c) => c.key))
  t.equal(raw.raw_cost_nano_usd, 4)
})

t.test('column names must be plain identifiers: nothing else reaches compiled code or SQL', async (t) => {
  t.throws(() => compileRow([{ key: 'x"; DROP', json: 'x', kind: 'text', nullable: false }]), /snake_case identifiers/)
  t.throws(() => compileRow([{ key: 'x', json: 'Bad-Name', kind: 'text', nullable: false }]), /snake_case identifiers/)
  const good = compileRow([{ key: 'a_b', json: 'a_b', kind: 'count', nullable: false }])
  t.same(good.toJson({ a_b: 2 }, 'number'), { a_b: 2 })
})
