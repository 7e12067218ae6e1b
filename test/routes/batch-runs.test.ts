// GET /batch/runs: newest first, filters, and a cursor that neither skips nor repeats a run while
// new runs are being added between pages.
import t from 'tap'
import { buildTestApp, postEvents, runBatch } from '../helpers/app.js'
import { event } from '../helpers/events.js'
import type { App } from '../../src/app.js'

async function page(app: App, query: string) {
  const res = await app.inject({ url: `/batch/runs?${query}` })
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json() as { runs: Array<{ id: number; processing_date: string; status: string }>; next_cursor: string | null }
}

t.test('cursor pagination is stable under concurrent inserts', async (t) => {
  const { app } = await buildTestApp(t)
  await runBatch(app, { from: '2026-11-01', to: '2026-11-07' })
  const before = (await page(app, 'limit=100')).runs.map((r) => r.id)
  t.same(before, [7, 6, 5, 4, 3, 2, 1], 'newest first')

  const first = await page(app, 'limit=3')
  t.same(first.runs.map((r) => r.id), [7, 6, 5])
  t.type(first.next_cursor, 'string')

  // Runs added between page requests (new dates and a rerun of an old one).
  await runBatch(app, { from: '2026-11-08', to: '2026-11-09' })
  await runBatch(app, { date: '2026-11-01' })

  const seen = first.runs.map((r) => r.id)
  let cursor = first.next_cursor
  while (cursor) {
    const next = await page(app, `limit=3&cursor=${encodeURIComponent(cursor)}`)
    seen.push(...next.runs.map((r) => r.id))
    cursor = next.next_cursor
    // And again more runs while paging.
    await runBatch(app, { date: '2026-11-10' })
  }
  t.same(seen, before, 'every run present at the start, once each, in order')
  t.same((await page(app, 'limit=2')).runs.map((r) => r.processing_date), ['2026-11-10', '2026-11-10'], 'new runs show up on a fresh first page')
})

t.test('filters combine with the cursor; a foreign cursor is 400', async (t) => {
  const { app } = await buildTestApp(t)
  await postEvents(app, [
    event({ client_org_id: 'c', timestamp: '2026-11-03T10:00:00Z' }),
  ])
  await runBatch(app, { from: '2026-11-01', to: '2026-11-06' })
  await runBatch(app, { from: '2026-11-02', to: '2026-11-04' })
  const dates: string[] = []
  let cursor: string | null = null
  do {
    const p = await page(app, `from=2026-11-02&to=2026-11-03&limit=1${cursor ? `&cursor=${cursor}` : ''}`)
    dates.push(...p.runs.map((r) => r.processing_date))
    cursor = p.next_cursor
  } while (cursor)
  t.same(dates, ['2026-11-03', '2026-11-02', '2026-11-03', '2026-11-02'])
  const warned = await page(app, 'status=succeeded_with_warnings&limit=100')
  t.ok(warned.runs.length > 0 && warned.runs.every((r) => r.status === 'succeeded_with_warnings'))
  t.equal((await page(app, 'status=failed')).runs.length, 0)

  for (const query of ['cursor=abc', `cursor=${Buffer.from('{"before":-1}').toString('base64url')}`, 'status=done', 'from=2026-11-05&to=2026-11-01', 'limit=501']) {
    const res = await app.inject({ url: `/batch/runs?${query}` })
    t.equal(res.statusCode, 400, query)
  }
})
