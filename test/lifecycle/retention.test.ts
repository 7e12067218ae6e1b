// Raw retention: exactly the eligible days go, nothing unsummarised, a late record blocks its day.
import t from 'tap'
import pino from 'pino'
import { buildTestApp, postEvents, runBatch, summaryRows, type TestApp } from '../helper.js'
import { dayEvents, rawCount } from './fixtures.js'
import { dayWindow } from '../../src/clock.js'
import { runRetention, type RetentionDeps } from '../../src/lifecycle/retention.js'

const log = pino({ level: 'silent' })
const TZ = 'Europe/Warsaw'

function deps(h: TestApp, extra: Partial<RetentionDeps> = {}): RetentionDeps {
  return { store: h.store, clock: h.clock, log, timeZone: TZ, retentionDays: 3, influxdbFirst: false, ...extra }
}

t.test('deletes exactly the old, summarised days; a late record blocks its day until a rerun', async (t) => {
  const h = await buildTestApp(t)
  const { app, db, clock } = h
  // Now is 2026-11-28 13:00 Warsaw; 3 retention days keep 11-25 onwards.
  for (const d of ['2026-11-18', '2026-11-19', '2026-11-20', '2026-11-21', '2026-11-26']) {
    t.equal((await postEvents(app, dayEvents(d, 7))).statusCode, 200)
  }
  clock.advance(1_000)
  for (const d of ['2026-11-18', '2026-11-19', '2026-11-21', '2026-11-26']) {
    t.equal((await runBatch(app, { date: d })).json().runs[0].status, 'succeeded_with_warnings')
  }
  clock.advance(1_000)
  // A late record for 11-19, received after its run started.
  t.same((await postEvents(app, dayEvents('2026-11-19', 1, 'late'))).json(), { accepted: 1, duplicates: 0 })
  clock.advance(1_000)

  const yields: number[] = []
  const report = await runRetention(deps(h, { chunkRows: 3, yieldToEventLoop: async () => void yields.push(1) }))
  t.equal(report.cutoffDate, '2026-11-25')
  t.same(
    report.days.map((d) => [d.date, d.action, d.rows]),
    [
      ['2026-11-18', 'deleted', 7],
      ['2026-11-19', 'kept_unsummarised', 8],
      ['2026-11-20', 'kept_unsummarised', 7],
      ['2026-11-21', 'deleted', 7],
    ],
  )
  t.equal(report.deletedRows, 14)
  t.ok(yields.length >= 6, 'deletes in chunks of 3 rows, yielding between them')
  t.equal(rawCount(db, '2026-11-18'), 0)
  t.equal(rawCount(db, '2026-11-19'), 8, 'late record and its day kept')
  t.equal(rawCount(db, '2026-11-20'), 7, 'never-summarised day kept')
  t.equal(rawCount(db, '2026-11-21'), 0)
  t.equal(rawCount(db, '2026-11-26'), 7, 'inside the retention window')
  t.ok(await h.store.archives.isRawPurged('2026-11-18'))
  t.notOk(await h.store.archives.isRawPurged('2026-11-19'))

  // The rerun summarises the late record; now 11-19 may go.
  t.equal((await runBatch(app, { date: '2026-11-19' })).json().runs[0].records_processed, 8)
  clock.advance(1_000)
  const second = await runRetention(deps(h))
  t.same(
    second.days.map((d) => [d.date, d.action]),
    [
      ['2026-11-19', 'deleted'],
      ['2026-11-20', 'kept_unsummarised'],
    ],
  )
  t.equal(rawCount(db, '2026-11-19'), 0)

  // A rerun of a purged day fails and leaves its summaries alone.
  const before = summaryRows(db, 'client_daily_usage', '2026-11-18')
  t.equal(before.length, 1)
  const rerun = (await runBatch(app, { date: '2026-11-18' })).json().runs[0]
  t.equal(rerun.status, 'failed')
  t.match(rerun.error_message, /removed by retention/)
  t.same(summaryRows(db, 'client_daily_usage', '2026-11-18'), before)
})

t.test('a run that started in the same millisecond as the last record does not count', async (t) => {
  const h = await buildTestApp(t)
  await postEvents(h.app, dayEvents('2026-11-10', 2))
  await runBatch(h.app, { date: '2026-11-10' })
  h.clock.advance(1_000)
  const report = await runRetention(deps(h))
  t.same(report.days.map((d) => d.action), ['kept_unsummarised'])
  t.equal(rawCount(h.db, '2026-11-10'), 2)
})

t.test('RAW_RETENTION_DAYS=0 and InfluxDB-first keep everything', async (t) => {
  const h = await buildTestApp(t)
  await postEvents(h.app, dayEvents('2026-10-01', 3))
  h.clock.advance(1_000)
  await runBatch(h.app, { date: '2026-10-01' })
  h.clock.advance(1_000)
  t.same((await runRetention(deps(h, { retentionDays: 0 }))).mode, 'disabled')
  t.same((await runRetention(deps(h, { influxdbFirst: true }))).mode, 'influxdb_first')
  t.equal(rawCount(h.db, '2026-10-01'), 3)
  t.equal((await runRetention(deps(h))).deletedRows, 3, 'and the same day goes with retention on')
})

t.test('freed pages go back to the OS on a new (incremental auto_vacuum) file', async (t) => {
  const h = await buildTestApp(t)
  t.equal(h.db.$client.pragma('auto_vacuum', { simple: true }), 2)
  const many = dayEvents('2026-10-02', 3000).map((e) => ({ ...e, model: e.model + '-'.repeat(150) }))
  for (let i = 0; i < many.length; i += 1000) await postEvents(h.app, many.slice(i, i + 1000))
  h.clock.advance(1_000)
  await runBatch(h.app, { date: '2026-10-02' })
  h.clock.advance(1_000)
  const pagesBefore = h.db.$client.pragma('page_count', { simple: true }) as number
  const report = await runRetention(deps(h, { vacuumPages: 10 }))
  t.equal(report.deletedRows, 3000)
  t.ok(report.freedPages > 50, `freed ${report.freedPages} pages`)
  t.equal(h.db.$client.pragma('freelist_count', { simple: true }), 0)
  t.ok((h.db.$client.pragma('page_count', { simple: true }) as number) < pagesBefore - 50)
})
