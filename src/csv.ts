// RFC 4180 CSV for the list endpoints: a header row, one line per row, CRLF line ends, fields
// quoted only when they hold a comma, a quote, CR or LF (quotes doubled). Money is exact decimal
// text, never a float; null is an empty field.

export type CsvValue = string | number | bigint | null

/**
 * A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection"); client
 * ids, users and model names come from producers and client tokens, so they are never trusted.
 */
const FORMULA_START = /^[=+\-@\t\r]/
/** Decimal text as the service writes numbers (money, rates): a number to a spreadsheet, no formula. */
const DECIMAL_TEXT = /^-?\d+(\.\d+)?$/

/**
 * One field. A text cell that a spreadsheet would evaluate gets a leading `'` (shown as text,
 * not run); numbers, and decimal text such as "-0.5", are written as they are.
 */
export function csvField(value: CsvValue): string {
  if (value === null) return ''
  let text = String(value)
  if (typeof value === 'string' && FORMULA_START.test(text) && !DECIMAL_TEXT.test(text)) text = `'${text}`
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** The whole document; every line (the last one too) ends with CRLF. */
export function toCsv(header: readonly string[], rows: Iterable<readonly CsvValue[]>): string {
  const lines = [header.map(csvField).join(',')]
  for (const row of rows) lines.push(row.map(csvField).join(','))
  return lines.join('\r\n') + '\r\n'
}

export const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8'
