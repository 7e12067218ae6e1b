// RFC 4180 CSV for the list endpoints: a header row, one line per row, CRLF line ends, fields
// quoted only when they hold a comma, a quote, CR or LF (quotes doubled). Money is exact decimal
// text, never a float; null is an empty field.

export type CsvValue = string | number | bigint | null

export function csvField(value: CsvValue): string {
  if (value === null) return ''
  const text = String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** The whole document; every line (the last one too) ends with CRLF. */
export function toCsv(header: readonly string[], rows: Iterable<readonly CsvValue[]>): string {
  const lines = [header.map(csvField).join(',')]
  for (const row of rows) lines.push(row.map(csvField).join(','))
  return lines.join('\r\n') + '\r\n'
}

export const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8'
