// The from/to of the read routes (docs/api.md#conventions): defaults in the business time zone,
// and the longest range a read accepts.
import { addDays, daysBetween } from './clock.js'
import { BadRequestError } from './errors.js'

/** The longest from/to range a read accepts. */
export const MAX_READ_RANGE_DAYS = 366

/** from/to defaults (the current month so far) and limits; `todayDate` is today in the business time zone. */
export function resolveRange(query: { from?: string; to?: string }, todayDate: string): { from: string; to: string } {
  const from = query.from ?? (query.to ?? todayDate).slice(0, 8) + '01'
  // By day count, not text: the longest range from a far-future `from` ends past 9999-12-31.
  const to =
    query.to ??
    (query.from && daysBetween(query.from, todayDate) > MAX_READ_RANGE_DAYS - 1 ? addDays(query.from, MAX_READ_RANGE_DAYS - 1) : todayDate)
  if (from > to) throw new BadRequestError(`from (${from}) is after to (${to})`)
  const days = daysBetween(from, to) + 1
  if (days > MAX_READ_RANGE_DAYS) throw new BadRequestError(`range of ${days} days exceeds ${MAX_READ_RANGE_DAYS} days`)
  return { from, to }
}
