// GET /batch/storage: every figure checked against the database itself.
import t from 'tap'
import pino from 'pino'
import { statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { buildTestApp, postEvents, runBatch } from '../helper.js'
import { dayEvents } from './fixtures.js'
import { dayWindow } from '../../src/clock.js'
import { runRetention } from '../../src/lifecycle/retention.js'

const TZ = 'Europe/Warsaw'

t.test('raw rows by local month, bytes from dbstat, archives and SQLite pages match the database', async (t) => {
  // buildTestApp makes the database in t.testdirName; the archives go beside it.
  const dir = join(t.testdirName, 'archives')
  const h = await buildTestApp(t, { env: { API_READ_TOKEN: 'storage-reader-token', API_ADMIN_TOKEN: 'storage-admin-token', RAW_ARCHIVE_DIR: dir } })
  t.equal(dirname(h.dbPath), t.testdirName)
  const auth = { authorization: 'Bearer storage-admin-token' }
  // 2026-09-30 23:30 Warsaw is still September locally though it is 21:30Z: months are local.
  const lateSeptember = { ...dayEvents('2026-09-30', 1, 'sep')[0]!, timestamp: '2026-09-30T21:30:00Z' }
  await postEvents(h.app, [lateSeptember, ...dayEvents('2026-10-05', 4, 'oct'), ...dayEvents('2026-11-02', 6, 'nov'), ...dayEvents('2026-11-27', 2, 'y')], auth)
  h.clock.advance(1_000)
  await runBatch(h.app, { date: '2026-10-05' }, auth)
  h.clock.advance(1_000)
  await runRetention({ store: h.store, clock: h.clock, log: pino({ level: 'silent' }), timeZone: TZ, retentionDays: 30, influxdbFirst: false, archiveDir: dir })

  t.equal((await h.app.inject({ url: '/batch/storage' })).statusCode, 401)
  const res = await h.app.inject({ url: '/batch/storage', headers: { authorization: 'Bearer storage-reader-token' } })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()

  const count = (from: string, to: string) =>
    h.db.$client
      .prepare('SELECT count(*) FROM usage_events WHERE occurred_at >= ? AND occurred_at < ?')
      .pluck()
      .get(dayWindow(from, TZ).startMs, dayWindow(to, TZ).startMs) as number
  t.same(
    body.raw.months.map((m: { month: string; rows: number }) => [m.month, m.rows]),
    [
      ['2026-09', count('2026-09-01', '2026-10-01')],
      ['2026-11', count('2026-11-01', '2026-12-01')],
    ],
  )
  t.same(body.raw.months.map((m: { rows: number }) => m.rows), [1, 8], 'October was archived and removed')
  t.equal(body.raw.rows, h.db.$client.prepare('SELECT count(*) FROM usage_events').pluck().get())
  t.equal(body.raw.oldest_day, '2026-09-30')
  t.equal(body.raw.newest_day, '2026-11-27')

  t.equal(body.raw.bytes_method, 'dbstat')
  const dbstat = h.db.$client
    .prepare("SELECT sum(pgsize) FROM dbstat WHERE name IN ('usage_events', 'usage_events_occurred_at_idx', 'usage_events_client_occurred_at_idx', 'sqlite_autoindex_usage_events_1')")
    .pluck()
    .get() as number
  t.equal(body.raw.bytes, dbstat)
  t.equal(body.raw.months.reduce((s: number, m: { bytes: number }) => s + m.bytes, 0), dbstat, 'months add up to the table')

  t.equal(body.archives.length, 1)
  const a = body.archives[0]
  t.match(a, { usage_date: '2026-10-05', file_name: 'usage-2026-10-05.ndjson.gz', rows: 4, file_present: true })
  t.equal(a.bytes, statSync(join(dir, a.file_name)).size)
  t.match(a.sha256, /^[0-9a-f]{64}$/)

  t.equal(body.sqlite.page_size, h.db.$client.pragma('page_size', { simple: true }))
  t.equal(body.sqlite.page_count, h.db.$client.pragma('page_count', { simple: true }))
  t.equal(body.sqlite.freelist_count, h.db.$client.pragma('freelist_count', { simple: true }))
  t.equal(body.sqlite.free_bytes, body.sqlite.freelist_count * body.sqlite.page_size)
  t.equal(body.sqlite.file_bytes, statSync(h.dbPath).size)
  t.equal(body.sqlite.auto_vacuum, 'incremental')
  t.same(body.retention, { mode: 'sqlite', managed_by: 'usage-batch retention pass', raw_retention_days: 90, archive_dir: dir })
})

t.test('an empty store', async (t) => {
  const h = await buildTestApp(t)
  const body = (await h.app.inject({ url: '/batch/storage' })).json()
  t.same(body.raw, { rows: 0, bytes: 0, bytes_method: 'dbstat', oldest_day: null, newest_day: null, months: [] })
  t.same(body.archives, [])
  const health = (await h.app.inject({ url: '/health' })).json()
  t.same(health.raw_retention, { mode: 'sqlite', managed_by: 'usage-batch retention pass', raw_retention_days: 90, archive_dir: null })
})
