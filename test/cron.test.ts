// The next-tick computation: 13:00 in Warsaw is 12:00 UTC in winter and 11:00 UTC in summer.
import t from 'tap'
import { compileSchedule, cronProblem, formatLocal } from '../src/cron.js'
import { loadConfig, ConfigError } from '../src/config.js'

const TZ = 'Europe/Warsaw'
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

t.test('0 13 * * * in Warsaw across the year and the DST change days', async (t) => {
  const s = compileSchedule('0 13 * * *', TZ)
  t.equal(iso(s.next(Date.parse('2026-01-15T08:00:00Z'))), '2026-01-15T12:00:00.000Z', 'winter: 12:00 UTC')
  t.equal(iso(s.next(Date.parse('2026-07-15T08:00:00Z'))), '2026-07-15T11:00:00.000Z', 'summer: 11:00 UTC')
  t.equal(iso(s.next(Date.parse('2026-03-28T12:00:00Z'))), '2026-03-29T11:00:00.000Z', 'spring change day: already CEST at 13:00')
  t.equal(iso(s.next(Date.parse('2026-03-27T12:00:00Z'))), '2026-03-28T12:00:00.000Z', 'the day before it: still CET')
  t.equal(iso(s.next(Date.parse('2026-10-24T11:00:00Z'))), '2026-10-25T12:00:00.000Z', 'autumn change day: back to CET')
  t.equal(iso(s.next(Date.parse('2026-10-23T11:00:00Z'))), '2026-10-24T11:00:00.000Z', 'the day before it: still CEST')
})

t.test('next is strictly after the given instant', async (t) => {
  const s = compileSchedule('0 13 * * *', TZ)
  t.equal(iso(s.next(Date.parse('2026-11-28T11:59:59.999Z'))), '2026-11-28T12:00:00.000Z')
  t.equal(iso(s.next(Date.parse('2026-11-28T12:00:00.000Z'))), '2026-11-29T12:00:00.000Z', 'a tick at its own instant is not due again')
})

t.test('wall times in the DST gap and overlap fire once', async (t) => {
  const s = compileSchedule('30 2 * * *', TZ)
  // 02:30 does not exist on 2026-03-29: the tick falls at the first instant after the gap.
  t.equal(iso(s.next(Date.parse('2026-03-28T12:00:00Z'))), '2026-03-29T01:00:00.000Z')
  // 02:30 happens twice on 2026-10-25: the first one only.
  const first = s.next(Date.parse('2026-10-24T12:00:00Z'))!
  t.equal(iso(first), '2026-10-25T00:30:00.000Z')
  t.equal(iso(s.next(first)), '2026-10-26T01:30:00.000Z')
})

t.test('local wall time text', async (t) => {
  t.equal(formatLocal(Date.parse('2026-11-29T12:00:00Z'), TZ), '2026-11-29 13:00 Europe/Warsaw')
  t.equal(formatLocal(Date.parse('2026-07-01T11:00:00Z'), TZ), '2026-07-01 13:00 Europe/Warsaw')
})

t.test('a bad expression is a configuration error naming BATCH_SCHEDULE_CRON', async (t) => {
  t.equal(cronProblem('0 13 * * *', TZ), undefined)
  t.match(cronProblem('0 0 13 * * *', TZ), /five-field/)
  t.match(cronProblem('0 25 * * *', TZ), /hour/)
  t.throws(() => compileSchedule('nonsense', TZ), /BATCH_SCHEDULE_CRON/)
  const error = t.throws(() => loadConfig({ BATCH_SCHEDULE_CRON: '61 13 * * *' })) as Error
  t.ok(error instanceof ConfigError)
  t.match(error.message, /BATCH_SCHEDULE_CRON: .*minute/)
})
