import t from 'tap'
import {
  addDays,
  dayWindow,
  datesInRange,
  daysBetween,
  fixedClock,
  isValidDate,
  isValidTimeZone,
  localDateOf,
  localParts,
  localTimeToInstant,
  today,
  yesterday,
  zoneOffsetMs,
} from '../src/clock.js'

const WARSAW = 'Europe/Warsaw'
const HOUR_MS = 3_600_000
/** An instant written as UTC ISO text, so expected values read like the spec. */
const at = (iso: string): number => {
  const ms = Date.parse(iso)
  if (Number.isNaN(ms)) throw new Error(`bad fixture instant ${iso}`)
  return ms
}

t.test('dayWindow in Warsaw', async (t) => {
  t.test('spring change day is 23 hours', async (t) => {
    const w = dayWindow('2026-03-29', WARSAW)
    t.equal(w.date, '2026-03-29')
    t.equal(w.startMs, at('2026-03-28T23:00:00Z'), 'starts at 00:00 CET')
    t.equal(w.endMs, at('2026-03-29T22:00:00Z'), 'ends at 00:00 CEST next day')
    t.equal(w.endMs - w.startMs, 23 * HOUR_MS)
  })
  t.test('autumn change day is 25 hours', async (t) => {
    const w = dayWindow('2026-10-25', WARSAW)
    t.equal(w.startMs, at('2026-10-24T22:00:00Z'), 'starts at 00:00 CEST')
    t.equal(w.endMs, at('2026-10-25T23:00:00Z'), 'ends at 00:00 CET next day')
    t.equal(w.endMs - w.startMs, 25 * HOUR_MS)
  })
  t.test('ordinary winter day is 24 hours at UTC+1', async (t) => {
    const w = dayWindow('2026-01-15', WARSAW)
    t.equal(w.startMs, at('2026-01-14T23:00:00Z'))
    t.equal(w.endMs, at('2026-01-15T23:00:00Z'))
  })
  t.test('ordinary summer day is 24 hours at UTC+2', async (t) => {
    const w = dayWindow('2026-07-15', WARSAW)
    t.equal(w.startMs, at('2026-07-14T22:00:00Z'))
    t.equal(w.endMs, at('2026-07-15T22:00:00Z'))
  })
  t.test('the days either side of a change are 24 hours', async (t) => {
    t.same(dayWindow('2026-03-28', WARSAW), {
      date: '2026-03-28',
      startMs: at('2026-03-27T23:00:00Z'),
      endMs: at('2026-03-28T23:00:00Z'),
    })
    t.same(dayWindow('2026-03-30', WARSAW), {
      date: '2026-03-30',
      startMs: at('2026-03-29T22:00:00Z'),
      endMs: at('2026-03-30T22:00:00Z'),
    })
    t.same(dayWindow('2026-10-24', WARSAW), {
      date: '2026-10-24',
      startMs: at('2026-10-23T22:00:00Z'),
      endMs: at('2026-10-24T22:00:00Z'),
    })
    t.same(dayWindow('2026-10-26', WARSAW), {
      date: '2026-10-26',
      startMs: at('2026-10-25T23:00:00Z'),
      endMs: at('2026-10-26T23:00:00Z'),
    })
  })
  t.test('the days of a year tile it with no gap or overlap', async (t) => {
    const dates = datesInRange('2026-01-01', '2026-12-31')
    const lengths = new Map<number, number>()
    let gaps = 0
    for (const [i, date] of dates.entries()) {
      const w = dayWindow(date, WARSAW)
      const hours = (w.endMs - w.startMs) / HOUR_MS
      lengths.set(hours, (lengths.get(hours) ?? 0) + 1)
      const next = dates[i + 1]
      if (next !== undefined && dayWindow(next, WARSAW).startMs !== w.endMs) gaps++
    }
    t.equal(gaps, 0)
    t.same(Object.fromEntries(lengths), { 23: 1, 24: 363, 25: 1 }, 'one short day, one long day')
    t.equal(
      dayWindow('2026-12-31', WARSAW).endMs - dayWindow('2026-01-01', WARSAW).startMs,
      365 * 24 * HOUR_MS,
      'winter to winter: the hours even out',
    )
  })
  t.throws(() => dayWindow('2026-02-30', WARSAW), RangeError, 'refuses a date that does not exist')
})

t.test('localDateOf on the DST change days', async (t) => {
  const cases: Array<[string, string, string]> = [
    // spring: 00:30 is still CET (+1), 23:30 is CEST (+2)
    ['2026-03-28T23:30:00Z', '2026-03-29', '00:30 CET on the spring day'],
    ['2026-03-29T21:30:00Z', '2026-03-29', '23:30 CEST on the spring day'],
    ['2026-03-28T22:30:00Z', '2026-03-28', '23:30 CET the evening before'],
    ['2026-03-29T22:30:00Z', '2026-03-30', '00:30 CEST the morning after'],
    // autumn: 00:30 is still CEST (+2), 23:30 is CET (+1)
    ['2026-10-24T22:30:00Z', '2026-10-25', '00:30 CEST on the autumn day'],
    ['2026-10-25T22:30:00Z', '2026-10-25', '23:30 CET on the autumn day'],
    ['2026-10-24T21:30:00Z', '2026-10-24', '23:30 CEST the evening before'],
    ['2026-10-25T23:30:00Z', '2026-10-26', '00:30 CET the morning after'],
    // both occurrences of the repeated hour belong to the same day
    ['2026-10-25T00:30:00Z', '2026-10-25', 'first 02:30'],
    ['2026-10-25T01:30:00Z', '2026-10-25', 'second 02:30'],
  ]
  for (const [iso, expected, label] of cases) t.equal(localDateOf(at(iso), WARSAW), expected, label)

  for (const date of ['2026-03-29', '2026-10-25']) {
    const w = dayWindow(date, WARSAW)
    t.equal(localDateOf(w.startMs, WARSAW), date, `${date}: the start belongs to the day`)
    t.equal(localDateOf(w.endMs - 1, WARSAW), date, `${date}: the last millisecond belongs to the day`)
    t.equal(localDateOf(w.endMs, WARSAW), addDays(date, 1), `${date}: the end belongs to the next day`)
    t.equal(localDateOf(w.startMs - 1, WARSAW), addDays(date, -1), `${date}: just before belongs to the day before`)
  }
})

t.test('localTimeToInstant', async (t) => {
  t.equal(localTimeToInstant('2026-01-15', 13, 0, WARSAW), at('2026-01-15T12:00:00Z'), '13:00 CET, winter')
  t.equal(localTimeToInstant('2026-07-15', 13, 0, WARSAW), at('2026-07-15T11:00:00Z'), '13:00 CEST, summer')
  t.equal(localTimeToInstant('2026-03-29', 13, 0, WARSAW), at('2026-03-29T11:00:00Z'), '13:00 on the spring day is CEST')
  t.equal(localTimeToInstant('2026-10-25', 13, 0, WARSAW), at('2026-10-25T12:00:00Z'), '13:00 on the autumn day is CET')
  t.equal(localTimeToInstant('2026-03-29', 1, 59, WARSAW), at('2026-03-29T00:59:00Z'), 'last minute before the gap')
  t.equal(localTimeToInstant('2026-03-29', 3, 0, WARSAW), at('2026-03-29T01:00:00Z'), 'first minute after the gap')
  t.equal(localTimeToInstant('2026-10-25', 3, 0, WARSAW), at('2026-10-25T02:00:00Z'), '03:00 after the repeat is CET')

  t.test('a skipped wall time is pushed forward by the gap', async (t) => {
    const ms = localTimeToInstant('2026-03-29', 2, 30, WARSAW)
    t.equal(ms, at('2026-03-29T01:30:00Z'), '02:30 does not exist; 03:30 CEST')
    t.match(localParts(ms, WARSAW), { year: 2026, month: 3, day: 29, hour: 3, minute: 30 })
    t.equal(localTimeToInstant('2026-03-29', 2, 0, WARSAW), at('2026-03-29T01:00:00Z'), '02:00 → 03:00 CEST')
  })
  t.test('a repeated wall time maps to its first occurrence', async (t) => {
    const ms = localTimeToInstant('2026-10-25', 2, 30, WARSAW)
    t.equal(ms, at('2026-10-25T00:30:00Z'), '02:30 CEST, not 02:30 CET')
    t.match(localParts(ms, WARSAW), { day: 25, hour: 2, minute: 30 })
    t.match(localParts(ms + HOUR_MS, WARSAW), { day: 25, hour: 2, minute: 30 }, 'an hour later shows 02:30 again')
  })
  t.throws(() => localTimeToInstant('2026-13-01', 0, 0, WARSAW), RangeError)
})

t.test('zoneOffsetMs in Warsaw', async (t) => {
  t.equal(zoneOffsetMs(at('2026-01-15T12:00:00Z'), WARSAW), HOUR_MS)
  t.equal(zoneOffsetMs(at('2026-07-15T12:00:00Z'), WARSAW), 2 * HOUR_MS)
  t.equal(zoneOffsetMs(at('2026-03-29T00:59:59Z'), WARSAW), HOUR_MS, 'a second before the jump')
  t.equal(zoneOffsetMs(at('2026-03-29T01:00:00Z'), WARSAW), 2 * HOUR_MS, 'at the jump')
  t.equal(zoneOffsetMs(at('2026-03-29T01:00:00.999Z'), WARSAW), 2 * HOUR_MS, 'milliseconds ignored')
})

t.test('calendar arithmetic across month, year and leap boundaries', async (t) => {
  t.equal(addDays('2026-01-31', 1), '2026-02-01')
  t.equal(addDays('2026-12-31', 1), '2027-01-01')
  t.equal(addDays('2027-01-01', -1), '2026-12-31')
  t.equal(addDays('2024-02-28', 1), '2024-02-29', 'leap year')
  t.equal(addDays('2026-02-28', 1), '2026-03-01', 'common year')
  t.equal(addDays('2024-03-01', -1), '2024-02-29')
  t.equal(addDays('2100-02-28', 1), '2100-03-01', 'century not divisible by 400')
  t.equal(addDays('2000-02-28', 1), '2000-02-29', 'century divisible by 400')
  t.equal(addDays('2026-03-28', 1), '2026-03-29', 'no time zone: DST is irrelevant')
  t.equal(addDays('2026-10-25', 1), '2026-10-26')
  t.equal(addDays('2026-05-05', 0), '2026-05-05')
  t.equal(addDays('2024-01-01', 366), '2025-01-01')
  t.equal(addDays('2026-01-01', 365), '2027-01-01')
  t.equal(addDays('2026-03-10', -40), '2026-01-29')
  t.throws(() => addDays('2026-02-29', 1), RangeError)
  t.throws(() => addDays('26-01-01', 1), RangeError)

  t.equal(daysBetween('2026-05-05', '2026-05-05'), 0)
  t.equal(daysBetween('2026-03-28', '2026-03-30'), 2, 'across the spring change')
  t.equal(daysBetween('2026-10-24', '2026-10-26'), 2, 'across the autumn change')
  t.equal(daysBetween('2026-03-30', '2026-03-28'), -2)
  t.equal(daysBetween('2024-02-28', '2024-03-01'), 2)
  t.equal(daysBetween('2026-02-28', '2026-03-01'), 1)
  t.equal(daysBetween('2024-01-01', '2025-01-01'), 366)
  t.equal(daysBetween('2026-01-01', '2027-01-01'), 365)
  t.equal(daysBetween('2026-12-31', '2027-01-01'), 1)
  t.throws(() => daysBetween('2026-01-01', 'tomorrow'), RangeError)

  t.same(datesInRange('2024-02-27', '2024-03-02'), ['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01', '2024-03-02'])
  t.same(datesInRange('2026-02-27', '2026-03-02'), ['2026-02-27', '2026-02-28', '2026-03-01', '2026-03-02'])
  t.same(datesInRange('2026-12-30', '2027-01-02'), ['2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02'])
  t.same(datesInRange('2026-10-25', '2026-10-25'), ['2026-10-25'])
  t.same(datesInRange('2026-10-26', '2026-10-25'), [], 'an inverted range is empty')
  t.equal(datesInRange('2024-01-01', '2024-12-31').length, 366)
})

t.test('isValidDate', async (t) => {
  const valid = ['2024-02-29', '2000-02-29', '2026-01-01', '2026-12-31', '2026-04-30']
  const invalid = [
    '2026-02-29',
    '1900-02-29',
    '2026-13-01',
    '2026-00-10',
    '2026-01-00',
    '2026-04-31',
    '2026-1-01',
    '2026-01-1',
    '26-01-01',
    '2026/01/01',
    '2026-01-01T00:00',
    ' 2026-01-01',
    '',
  ]
  for (const d of valid) t.equal(isValidDate(d), true, `${d} is a date`)
  for (const d of invalid) t.equal(isValidDate(d), false, `${JSON.stringify(d)} is not`)
})

t.test('nothing is hard-coded to Warsaw', async (t) => {
  t.test('America/New_York', async (t) => {
    const NY = 'America/New_York'
    // 2026: DST from the second Sunday of March (8th) to the first Sunday of November (1st).
    const spring = dayWindow('2026-03-08', NY)
    t.equal(spring.startMs, at('2026-03-08T05:00:00Z'), 'midnight EST')
    t.equal(spring.endMs, at('2026-03-09T04:00:00Z'), 'midnight EDT')
    t.equal(spring.endMs - spring.startMs, 23 * HOUR_MS)
    const autumn = dayWindow('2026-11-01', NY)
    t.equal(autumn.startMs, at('2026-11-01T04:00:00Z'))
    t.equal(autumn.endMs, at('2026-11-02T05:00:00Z'))
    t.equal(autumn.endMs - autumn.startMs, 25 * HOUR_MS)
    const warsawSpring = dayWindow('2026-03-29', NY)
    t.equal(warsawSpring.endMs - warsawSpring.startMs, 24 * HOUR_MS, "Warsaw's short day is ordinary in New York")
    t.equal(localTimeToInstant('2026-03-08', 2, 30, NY), at('2026-03-08T07:30:00Z'), 'skipped 02:30 → 03:30 EDT')
    t.equal(localTimeToInstant('2026-11-01', 1, 30, NY), at('2026-11-01T05:30:00Z'), 'repeated 01:30 → first, EDT')
    t.equal(localTimeToInstant('2026-01-15', 13, 0, NY), at('2026-01-15T18:00:00Z'))
    t.equal(localDateOf(at('2026-01-15T03:00:00Z'), NY), '2026-01-14', '03:00 UTC is the evening before')
  })
  t.test('UTC', async (t) => {
    for (const date of ['2026-03-29', '2026-10-25', '2024-02-29']) {
      const w = dayWindow(date, 'UTC')
      t.equal(w.startMs, at(`${date}T00:00:00Z`))
      t.equal(w.endMs - w.startMs, 24 * HOUR_MS, `${date} is 24 hours`)
    }
    t.equal(localTimeToInstant('2026-07-15', 13, 0, 'UTC'), at('2026-07-15T13:00:00Z'))
    t.equal(localDateOf(at('2026-01-15T23:30:00Z'), 'UTC'), '2026-01-15')
  })
  t.test('a half-hour zone (Asia/Kolkata, UTC+5:30)', async (t) => {
    const w = dayWindow('2026-01-15', 'Asia/Kolkata')
    t.equal(w.startMs, at('2026-01-14T18:30:00Z'))
    t.equal(w.endMs, at('2026-01-15T18:30:00Z'))
  })
  t.test('a southern-hemisphere zone (Australia/Sydney)', async (t) => {
    // DST ends on the first Sunday of April (2026-04-05, 03:00 AEDT → 02:00 AEST)
    // and starts on the first Sunday of October (2026-10-04, 02:00 AEST → 03:00 AEDT).
    const autumn = dayWindow('2026-04-05', 'Australia/Sydney')
    t.equal(autumn.startMs, at('2026-04-04T13:00:00Z'), 'midnight AEDT (+11)')
    t.equal(autumn.endMs, at('2026-04-05T14:00:00Z'), 'midnight AEST (+10)')
    const spring = dayWindow('2026-10-04', 'Australia/Sydney')
    t.equal(spring.endMs - spring.startMs, 23 * HOUR_MS)
  })
  t.equal(isValidTimeZone('Europe/Warsaw'), true)
  t.equal(isValidTimeZone('America/New_York'), true)
  t.equal(isValidTimeZone('Mars/Base'), false)
  t.equal(isValidTimeZone(''), false)
})

t.test('fixedClock', async (t) => {
  const start = at('2026-01-15T12:00:00Z')
  const clock = fixedClock(start)
  t.equal(clock.now(), start)
  t.equal(clock.now(), start, 'stands still')
  clock.advance(90_000)
  t.equal(clock.now(), start + 90_000)
  clock.advance(-30_000)
  t.equal(clock.now(), start + 60_000)
  clock.set(at('2026-10-25T00:30:00Z'))
  t.equal(clock.now(), at('2026-10-25T00:30:00Z'))
  const other = fixedClock(0)
  t.equal(other.now(), 0, 'clocks do not share state')
  t.equal(clock.now(), at('2026-10-25T00:30:00Z'))
})

t.test('today and yesterday are local dates', async (t) => {
  // 23:30 UTC on 15 January is 00:30 on 16 January in Warsaw.
  const clock = fixedClock(at('2026-01-15T23:30:00Z'))
  t.equal(today(clock, WARSAW), '2026-01-16')
  t.equal(yesterday(clock, WARSAW), '2026-01-15')
  t.equal(today(clock, 'UTC'), '2026-01-15')
  t.equal(yesterday(clock, 'UTC'), '2026-01-14')
  t.equal(today(clock, 'America/New_York'), '2026-01-15')

  clock.set(at('2026-07-15T22:30:00Z'))
  t.equal(today(clock, WARSAW), '2026-07-16', 'summer: 22:30 UTC is already tomorrow')
  clock.set(at('2026-07-15T21:59:59Z'))
  t.equal(today(clock, WARSAW), '2026-07-15', 'one second before local midnight')

  clock.set(at('2025-12-31T23:30:00Z'))
  t.equal(today(clock, WARSAW), '2026-01-01', 'year boundary')
  t.equal(yesterday(clock, WARSAW), '2025-12-31')

  clock.set(at('2026-03-28T23:30:00Z'))
  t.equal(today(clock, WARSAW), '2026-03-29', 'the short day has begun')
  t.equal(yesterday(clock, WARSAW), '2026-03-28')
  clock.set(at('2026-03-29T22:30:00Z'))
  t.equal(today(clock, WARSAW), '2026-03-30', 'and ended after 23 hours')
  t.equal(yesterday(clock, WARSAW), '2026-03-29')
})
