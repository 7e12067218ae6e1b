// What a clean, uninterrupted run produces over the same raw data (run on a copy of the file).
import pino from 'pino'
import { systemClock } from '../../src/clock.js'
import { createBatchService } from '../../src/batch/service.js'
import { openDb } from '../../src/db/open.js'
import { noRateProvider } from '../../src/rates/types.js'
import { createSqliteSource } from '../../src/sources/sqlite.js'
import { stableSummaries } from './data.js'

export async function cleanRunRows(path: string, dates: string[]) {
  const db = openDb({ path })
  const source = createSqliteSource({ db, clock: systemClock, path })
  const batch = createBatchService({
    db,
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
    out.set(date, stableSummaries(db, date))
  }
  await source.close()
  db.$client.close()
  return out
}

export function rowCount(summaries: ReturnType<typeof stableSummaries>): number {
  return Object.values(summaries).reduce((n, rows) => n + rows.length, 0)
}
