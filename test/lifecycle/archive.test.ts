// Archive before delete: deterministic gzip NDJSON, checksum and count recorded, restore round-trips.
import t, { type Test } from 'tap'
import pino from 'pino'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { buildTestApp, postEvents, runBatch, summaryRows, type TestApp } from '../helper.js'
import { dayEvents, rawCount } from './fixtures.js'
import { dayWindow } from '../../src/clock.js'
import { ARCHIVE_FIELDS, restoreArchive, writeDayArchive } from '../../src/lifecycle/archive.js'
import { runRetention } from '../../src/lifecycle/retention.js'

const log = pino({ level: 'silent' })
const TZ = 'Europe/Warsaw'
const DAY = '2026-11-10'
const TABLES = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']

function rawRows(db: TestApp['db'], date: string) {
  const w = dayWindow(date, TZ)
  return db.$client.prepare('SELECT * FROM usage_events WHERE occurred_at >= ? AND occurred_at < ? ORDER BY request_id').all(w.startMs, w.endMs)
}

async function setup(t: Test) {
  const h = await buildTestApp(t)
  // The test's folder already holds the database (t.testdir() again would empty it).
  const archiveDir = join(dirname(h.dbPath), 'archives')
  // Two clients, request ids that sort differently from insertion order, a unicode user.
  const events = [...dayEvents(DAY, 25, 'zz', 'acme'), ...dayEvents(DAY, 10, 'aa', 'globex')].map((e, i) => ({
    ...e,
    external_user: i === 3 ? 'użytkownik-ż' : e.external_user,
  }))
  t.equal((await postEvents(h.app, events)).statusCode, 200)
  h.clock.advance(1_000)
  t.equal((await runBatch(h.app, { date: DAY })).json().runs[0].status, 'succeeded_with_warnings')
  h.clock.advance(1_000)
  const retention = () =>
    runRetention({ store: h.store, clock: h.clock, log, timeZone: TZ, retentionDays: 3, influxdbFirst: false, archiveDir })
  return { ...h, archiveDir, events, retention }
}

t.test('archive, delete, restore, rerun: rows and summaries come back identical', async (t) => {
  const h = await setup(t)
  const originalRaw = rawRows(h.db, DAY)
  const summaries = TABLES.map((tb) => summaryRows(h.db, tb, DAY))

  const report = await h.retention()
  t.same(report.days, [{ date: DAY, rows: 35, action: 'deleted', archive: `usage-${DAY}.ndjson.gz` }])
  t.equal(rawCount(h.db, DAY), 0)

  const path = join(h.archiveDir, `usage-${DAY}.ndjson.gz`)
  const bytes = readFileSync(path)
  const record = (await h.store.archives.get(DAY))!
  t.equal(record.row_count, 35)
  t.equal(record.bytes, bytes.length)
  t.equal(record.sha256, createHash('sha256').update(bytes).digest('hex'))
  const lines = gunzipSync(bytes).toString('utf8').trimEnd().split('\n')
  t.equal(lines.length, 35)
  t.same(Object.keys(JSON.parse(lines[0]!)), [...ARCHIVE_FIELDS], 'stable field order')
  t.same(
    lines.map((l) => JSON.parse(l).request_id),
    (originalRaw as Array<{ request_id: string }>).map((r) => r.request_id),
    'rows ordered by request_id',
  )

  const restored = await restoreArchive({ store: h.store, archiveDir: h.archiveDir, clock: h.clock, log }, DAY)
  t.same({ rows: restored.rows, inserted: restored.inserted, duplicates: restored.duplicates }, { rows: 35, inserted: 35, duplicates: 0 })
  t.same(rawRows(h.db, DAY), originalRaw, 'every column of every row back as it was')
  const again = await restoreArchive({ store: h.store, archiveDir: h.archiveDir, clock: h.clock, log }, DAY)
  t.same({ inserted: again.inserted, duplicates: again.duplicates }, { inserted: 0, duplicates: 35 }, 'idempotent')

  // Written again from the restored rows, the file is the same byte for byte.
  const otherDir = join(dirname(h.dbPath), 'again')
  const w = dayWindow(DAY, TZ)
  const rewritten = await writeDayArchive(h.store, otherDir, { date: DAY, startMs: w.startMs, endMs: w.endMs, maxReceivedAt: Number.MAX_SAFE_INTEGER })
  t.ok(readFileSync(join(otherDir, rewritten.fileName)).equals(bytes), 'deterministic archive bytes')

  h.clock.advance(1_000)
  const rerun = (await runBatch(h.app, { date: DAY })).json().runs[0]
  t.equal(rerun.status, 'succeeded_with_warnings', 'a restored day may be rerun')
  t.equal(rerun.data_corrections, 0)
  t.same(TABLES.map((tb) => summaryRows(h.db, tb, DAY)), summaries, 'identical summaries')

  // The next pass reuses the archive (it covers the rows) and deletes again.
  h.clock.advance(1_000)
  const second = await h.retention()
  t.same(second.days.map((d) => d.action), ['deleted'])
  t.ok(readFileSync(path).equals(bytes), 'archive not rewritten')
})

t.test('restore refuses a file whose checksum does not match', async (t) => {
  const h = await setup(t)
  await h.retention()
  const path = join(h.archiveDir, `usage-${DAY}.ndjson.gz`)
  const bytes = readFileSync(path)
  bytes[bytes.length - 10]! ^= 0xff
  writeFileSync(path, bytes)
  await t.rejects(restoreArchive({ store: h.store, archiveDir: h.archiveDir, clock: h.clock, log }, DAY), /checksum|cannot read/)
  t.equal(rawCount(h.db, DAY), 0, 'nothing loaded')
  await t.rejects(restoreArchive({ store: h.store, archiveDir: h.archiveDir, clock: h.clock, log }, '2026-01-01'), /no archive recorded/)
})

t.test('restored rows plus a late record: the archive is rewritten to hold both', async (t) => {
  const h = await setup(t)
  await h.retention()
  await restoreArchive({ store: h.store, archiveDir: h.archiveDir, clock: h.clock, log }, DAY)
  t.equal((await postEvents(h.app, dayEvents(DAY, 1, 'late'))).json().accepted, 1)
  h.clock.advance(1_000)
  t.equal((await h.retention()).days[0]!.action, 'kept_unsummarised', 'the late record blocks deletion')
  await runBatch(h.app, { date: DAY })
  h.clock.advance(1_000)
  const report = await h.retention()
  t.same(report.days.map((d) => [d.action, d.rows]), [['deleted', 36]])
  t.equal((await h.store.archives.get(DAY))!.row_count, 36)
})

t.test('an archive file without a record (database restored from a backup) is never overwritten with fewer rows', async (t) => {
  const h = await setup(t)
  await h.retention()
  const path = join(h.archiveDir, `usage-${DAY}.ndjson.gz`)
  const bytes = readFileSync(path)
  await restoreArchive({ store: h.store, archiveDir: h.archiveDir, clock: h.clock, log }, DAY)
  // The backup predates the archive record and lacks some rows the file holds.
  h.db.$client.prepare('DELETE FROM raw_archives').run()
  h.db.$client.prepare("DELETE FROM usage_events WHERE request_id LIKE 'aa-%'").run()
  await runBatch(h.app, { date: DAY })
  h.clock.advance(1_000)
  const report = await h.retention()
  t.same(report.days.map((d) => [d.action, d.rows]), [['deleted', 25]])
  t.ok(readFileSync(path).equals(bytes), 'the fuller file stays as it was')
  t.match(await h.store.archives.get(DAY), { row_count: 35, bytes: bytes.length })
})

t.test('an archive that cannot be written keeps the day', async (t) => {
  const h = await setup(t)
  writeFileSync(h.archiveDir, 'a file where the folder should be')
  const report = await h.retention()
  t.same(report.days.map((d) => d.action), ['kept_archive_failed'])
  t.equal(rawCount(h.db, DAY), 35)
  t.equal(await h.store.archives.get(DAY), undefined)
})
