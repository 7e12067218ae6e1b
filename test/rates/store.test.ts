import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { dailyExchangeRates } from '../../src/db/schema.js'
import { openSqliteStore, type SqliteStore } from '../../src/db/sqlite/store.js'

function memoryStore(t: Test): SqliteStore {
  const store = openSqliteStore({ path: ':memory:' })
  t.teardown(() => store.close())
  return store
}

const nbpRate = (usage_date: string, rate: string, effective_date: string, table_no: string) => ({
  usage_date,
  rate,
  effective_date,
  table_no,
  policy: 'previous-business-day' as const,
  fetched_at: '2026-11-28T11:00:00.000Z',
})

t.test('rates.saveNbp stores the evidence and answers the stored row', async (t) => {
  const store = memoryStore(t)
  const saved = await store.rates.saveNbp(nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  t.same(saved, { ...nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'), source: 'nbp' })
  const rows = store.db.select().from(dailyExchangeRates).all()
  t.equal(rows.length, 1)
  t.match(rows[0], { currency_from: 'USD', currency_to: 'PLN', source: 'nbp', table_no: '219/A/NBP/2026', note: null })
})

t.test('rates.saveNbp never overwrites a manual rate', async (t) => {
  const store = memoryStore(t)
  await store.rates.setManual({ usage_date: '2026-11-12', rate: '4.1000', note: 'NBP outage', fetched_at: '2026-11-12T08:00:00.000Z' })
  const answered = await store.rates.saveNbp(nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  t.equal(answered.source, 'manual')
  t.equal(answered.rate, '4.1')
  const rows = store.db.select().from(dailyExchangeRates).all()
  t.equal(rows.length, 1)
  t.match(rows[0], { source: 'manual', rate: '4.1', table_no: null, effective_date: '2026-11-12', note: 'NBP outage' })
})

t.test('a manual rate replaces an NBP rate and an earlier manual rate', async (t) => {
  const store = memoryStore(t)
  await store.rates.saveNbp(nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  await store.rates.setManual({ usage_date: '2026-11-12', rate: 4.2, fetched_at: '2026-11-13T08:00:00.000Z' })
  t.match(await store.rates.get('2026-11-12'), { source: 'manual', rate: '4.2', table_no: null })
  await store.rates.setManual({ usage_date: '2026-11-12', rate: '4.25', note: 'corrected', fetched_at: '2026-11-14T08:00:00.000Z' })
  t.match(await store.rates.get('2026-11-12'), { source: 'manual', rate: '4.25', fetched_at: '2026-11-14T08:00:00.000Z' })
  t.equal(store.db.select().from(dailyExchangeRates).all().length, 1)
})

t.test('a later NBP rate may refresh an earlier NBP rate', async (t) => {
  const store = memoryStore(t)
  await store.rates.saveNbp(nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  await store.rates.saveNbp(nbpRate('2026-11-12', '4.0342', '2026-11-10', '219/A/NBP/2026'))
  t.equal((await store.rates.get('2026-11-12'))?.rate, '4.0342')
})

t.test('rates are canonical exact decimals; nonsense is refused', async (t) => {
  const store = memoryStore(t)
  t.equal((await store.rates.setManual({ usage_date: '2026-11-02', rate: '04.03410', fetched_at: 'x' })).rate, '4.0341')
  t.equal((await store.rates.setManual({ usage_date: '2026-11-03', rate: 4.0341, fetched_at: 'x' })).rate, '4.0341')
  await t.rejects(store.rates.setManual({ usage_date: '2026-11-04', rate: '0', fetched_at: 'x' }), RangeError)
  await t.rejects(store.rates.setManual({ usage_date: '2026-11-04', rate: '-4.1', fetched_at: 'x' }), RangeError)
  await t.rejects(store.rates.setManual({ usage_date: '2026-11-04', rate: 'four', fetched_at: 'x' }), { name: 'DecimalError' })
  await t.rejects(store.rates.setManual({ usage_date: '2026-02-30', rate: '4.1', fetched_at: 'x' }), RangeError)
  await t.rejects(store.rates.saveNbp(nbpRate('2026-11-04', 'NaN', '2026-11-03', '1/A/NBP/2026')))
  t.equal(await store.rates.get('2026-11-04'), undefined)
})

t.test('rates.list: inclusive range, oldest first', async (t) => {
  const store = memoryStore(t)
  await store.rates.saveNbp(nbpRate('2026-11-13', '4.02', '2026-11-12', '220/A/NBP/2026'))
  await store.rates.saveNbp(nbpRate('2026-11-10', '4.01', '2026-11-09', '218/A/NBP/2026'))
  await store.rates.setManual({ usage_date: '2026-11-12', rate: '4.1', fetched_at: '2026-11-12T08:00:00.000Z' })
  await store.rates.saveNbp(nbpRate('2026-11-20', '4.03', '2026-11-19', '225/A/NBP/2026'))
  t.same(
    (await store.rates.list('2026-11-10', '2026-11-13')).map((r) => [r.usage_date, r.rate, r.source]),
    [
      ['2026-11-10', '4.01', 'nbp'],
      ['2026-11-12', '4.1', 'manual'],
      ['2026-11-13', '4.02', 'nbp'],
    ],
  )
  t.same(await store.rates.list('2026-12-01', '2026-12-31'), [])
})

t.test('rates survive reopening the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usage-batch-rates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'usage.db')
  const first = openSqliteStore({ path })
  await first.rates.saveNbp(nbpRate('2026-11-12', '4.0341', '2026-11-10', '219/A/NBP/2026'))
  await first.close()
  const second = openSqliteStore({ path })
  t.teardown(() => second.close())
  t.match(await second.rates.get('2026-11-12'), { rate: '4.0341', table_no: '219/A/NBP/2026', source: 'nbp' })
})
