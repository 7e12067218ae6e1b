// What a clean, uninterrupted run produces over the same raw data (run on a copy of the file).
import pino from 'pino'
import { systemClock } from '../../src/clock.js'
import { createBatchService } from '../../src/batch/service.js'
import { openSqliteStore } from '../../src/db/sqlite/store.js'
import { noRateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { stableSummaries } from './data.js'

export async function cleanRunRows(path: string, dates: string[]) {
  const store = openSqliteStore({ path })
  const source = createSqliteSource({ store, clock: systemClock })
  const batch = createBatchService({
    store,
    source,
    rates: noRateProvider,
    clock: systemClock,
    log: pino({ level: 'silent' }),
    timeZone: 'Europe/Warsaw',
    defaultMarkupRate: '1.3',
  })
  const out = new Map<string, ReturnType<typeof stableSummaries>>()
  for (const date of dates) {
    await batch.runDate(date, 'cli')
    out.set(date, stableSummaries(store.db, date))
  }
  await source.close()
  await store.close()
  return out
}

export function rowCount(summaries: ReturnType<typeof stableSummaries>): number {
  return Object.values(summaries).reduce((n, rows) => n + rows.length, 0)
}
