import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openDb, type Db } from '../../src/db/open.js'
import { getStoredUsdPlnRate, listRates, saveNbpRate, setManualRate } from '../../src/db/rates.js'
import { dailyExchangeRates } from '../../src/db/schema.js'

function memoryDb(t: Test): Db {
  const db = openDb({ path: ':memory:' })
  t.teardown(() => db.$client.close())
  return db
}

const nbpRate = (usage_date: string, rate: string, effective_date: string, table_no: string) => ({
  usage_date,
  rate,
  effective_date,
  table_no,
  policy: 'previous-business-day' as const,
  fetched_at: '2026-11-28T11:00:00.000Z',
})

t.test('saveNbpRate stores the evidence and answers the stored row', async (t) => {
  const db = memoryDb(t)
  const saved = saveNbpRate(db, nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  t.same(saved, { ...nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'), source: 'nbp' })
  const rows = db.select().from(dailyExchangeRates).all()
  t.equal(rows.length, 1)
  t.match(rows[0], { currency_from: 'USD', currency_to: 'PLN', source: 'nbp', table_no: '219/A/NBP/2026', note: null })
})

t.test('saveNbpRate never overwrites a manual rate', async (t) => {
  const db = memoryDb(t)
  setManualRate(db, { usage_date: '2026-11-12', rate: '4.1000', note: 'NBP outage', fetched_at: '2026-11-12T08:00:00.000Z' })
  const answered = saveNbpRate(db, nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  t.equal(answered.source, 'manual')
  t.equal(answered.rate, '4.1')
  const rows = db.select().from(dailyExchangeRates).all()
  t.equal(rows.length, 1)
  t.match(rows[0], { source: 'manual', rate: '4.1', table_no: null, effective_date: '2026-11-12', note: 'NBP outage' })
})

t.test('a manual rate replaces an NBP rate and an earlier manual rate', async (t) => {
  const db = memoryDb(t)
  saveNbpRate(db, nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  setManualRate(db, { usage_date: '2026-11-12', rate: 4.2, fetched_at: '2026-11-13T08:00:00.000Z' })
  t.match(getStoredUsdPlnRate(db, '2026-11-12'), { source: 'manual', rate: '4.2', table_no: null })
  setManualRate(db, { usage_date: '2026-11-12', rate: '4.25', note: 'corrected', fetched_at: '2026-11-14T08:00:00.000Z' })
  t.match(getStoredUsdPlnRate(db, '2026-11-12'), { source: 'manual', rate: '4.25', fetched_at: '2026-11-14T08:00:00.000Z' })
  t.equal(db.select().from(dailyExchangeRates).all().length, 1)
})

t.test('a later NBP rate may refresh an earlier NBP rate', async (t) => {
  const db = memoryDb(t)
  saveNbpRate(db, nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  saveNbpRate(db, nbpRate('2026-11-12', '4.0342', '2026-11-10', '219/A/NBP/2026'))
  t.equal(getStoredUsdPlnRate(db, '2026-11-12')?.rate, '4.0342')
})

t.test('rates are canonical exact decimals; nonsense is refused', async (t) => {
  const db = memoryDb(t)
  t.equal(setManualRate(db, { usage_date: '2026-11-02', rate: '04.03410', fetched_at: 'x' }).rate, '4.0341')
  t.equal(setManualRate(db, { usage_date: '2026-11-03', rate: 4.0341, fetched_at: 'x' }).rate, '4.0341')
  t.throws(() => setManualRate(db, { usage_date: '2026-11-04', rate: '0', fetched_at: 'x' }), RangeError)
  t.throws(() => setManualRate(db, { usage_date: '2026-11-04', rate: '-4.1', fetched_at: 'x' }), RangeError)
  t.throws(() => setManualRate(db, { usage_date: '2026-11-04', rate: 'four', fetched_at: 'x' }), { name: 'DecimalError' })
  t.throws(() => setManualRate(db, { usage_date: '2026-02-30', rate: '4.1', fetched_at: 'x' }), RangeError)
  t.throws(() => saveNbpRate(db, nbpRate('2026-11-04', 'NaN', '2026-11-03', '1/A/NBP/2026')))
  t.equal(getStoredUsdPlnRate(db, '2026-11-04'), undefined)
})

t.test('listRates: inclusive range, oldest first', async (t) => {
  const db = memoryDb(t)
  saveNbpRate(db, nbpRate('2026-11-13', '4.02', '2026-11-12', '220/A/NBP/2026'))
  saveNbpRate(db, nbpRate('2026-11-10', '4.01', '2026-11-09', '218/A/NBP/2026'))
  setManualRate(db, { usage_date: '2026-11-12', rate: '4.1', fetched_at: '2026-11-12T08:00:00.000Z' })
  saveNbpRate(db, nbpRate('2026-11-20', '4.03', '2026-11-19', '225/A/NBP/2026'))
  t.same(
    listRates(db, '2026-11-10', '2026-11-13').map((r) => [r.usage_date, r.rate, r.source]),
    [
      ['2026-11-10', '4.01', 'nbp'],
      ['2026-11-12', '4.1', 'manual'],
      ['2026-11-13', '4.02', 'nbp'],
    ],
  )
  t.same(listRates(db, '2026-12-01', '2026-12-31'), [])
})

t.test('rates survive reopening the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usage-batch-rates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'usage.db')
  const first = openDb({ path })
  saveNbpRate(first, nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  first.$client.close()
  const second = openDb({ path })
  t.teardown(() => second.$client.close())
  t.match(getStoredUsdPlnRate(second, '2026-11-12'), { rate: '4.0341', table_no: '219/A/NBP/2026', source: 'nbp' })
})
