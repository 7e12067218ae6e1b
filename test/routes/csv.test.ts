// CSV exports cannot attack their reader (OWASP CSV injection), and Accept negotiation honours q-values.
import t from 'tap'
import { preferredMediaType } from '../../src/accept.js'
import { csvField } from '../../src/csv.js'
import { buildTestApp, postEvents, runBatch } from '../helpers/app.js'

const FORMULA = /^[=+\-@\t\r]/

/** RFC 4180 records of a CSV document (quoted fields may hold commas, quotes, CR and LF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') {
      row.push(field)
      field = ''
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field)
      rows.push(row)
      row = []
      field = ''
      i++
    } else field += c
  }
  return rows
}

t.test('csvField: text that a spreadsheet would evaluate gets a leading apostrophe; numbers stay numbers', async (t) => {
  t.equal(csvField('=HYPERLINK("http://x","y")'), `"'=HYPERLINK(""http://x"",""y"")"`)
  t.equal(csvField('+1+1'), "'+1+1")
  t.equal(csvField('-1+1'), "'-1+1")
  t.equal(csvField('@SUM(A1)'), "'@SUM(A1)")
  t.equal(csvField('\tcmd'), "'\tcmd")
  t.equal(csvField('\rcmd'), `"'\rcmd"`)
  t.equal(csvField('a=b'), 'a=b', 'only the first character matters')
  t.equal(csvField(-5), '-5', 'a negative number is a number')
  t.equal(csvField(-5n), '-5')
  t.equal(csvField('-0.000000150'), '-0.000000150', 'decimal text (money) is a number too')
  t.equal(csvField('0.000000150'), '0.000000150')
  t.equal(csvField(null), '')
})

t.test('every CSV endpoint neutralises client ids, users and models; numeric cells are untouched', async (t) => {
  const { app } = await buildTestApp(t)
  const hostile = ['=cmd|"/C calc"!A0', '+SUM(1)', '-2+3', '@ref', '\tTAB', '\rCR']
  const events = hostile.flatMap((text, i) => [
    {
      request_id: `h-${i}`,
      client_org_id: text,
      model: text,
      external_user: text,
      input_tokens: 10 + i,
      output_tokens: 1,
      cost_usd: '0.000000150',
      timestamp: '2026-11-20T10:00:00Z',
    },
  ])
  t.equal((await postEvents(app, events)).statusCode, 200)
  t.equal((await runBatch(app, { date: '2026-11-20' })).statusCode, 200)

  const documents: Array<[string, string]> = [['/usage/clients?from=2026-11-01&to=2026-11-30&format=csv', 'clients']]
  for (const client of hostile) {
    const id = encodeURIComponent(client)
    for (const path of ['daily', 'users', 'models']) documents.push([`/usage/clients/${id}/${path}?from=2026-11-01&to=2026-11-30&format=csv`, `${path} of ${JSON.stringify(client)}`])
  }
  let textCells = 0
  for (const [url, name] of documents) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, name)
    const [header, ...rows] = parseCsv(res.body)
    t.ok(rows.length > 0, `${name}: rows listed`)
    for (const row of rows) {
      row.forEach((cell, i) => {
        const column = header![i]!
        if (/^(client_org_id|external_user|model|primary_model)$/.test(column)) {
          textCells += 1
          t.notOk(FORMULA.test(cell), `${name} ${column}: ${JSON.stringify(cell)} cannot start a formula`)
          t.ok(cell.startsWith("'") && hostile.includes(cell.slice(1)), `${name} ${column}: ${JSON.stringify(cell)} is the value behind an apostrophe`)
        } else {
          t.notOk(cell.startsWith("'"), `${name} ${column}: numeric or date cell ${JSON.stringify(cell)} untouched`)
        }
      })
    }
    if (name === 'clients') t.ok(rows.some((r) => r.includes('0.000000195')), 'money stays exact decimal text')
  }
  t.ok(textCells >= hostile.length * 5, `text cells checked: ${textCells}`)

  // JSON is data, not a spreadsheet: values are returned as stored.
  const json = await app.inject({ url: '/usage/clients?from=2026-11-01&to=2026-11-30' })
  t.same(json.json().clients.map((c: { client_org_id: string }) => c.client_org_id).sort(), [...hostile].sort())
})

t.test('Accept negotiation honours q-values and media ranges', async (t) => {
  const offered = ['application/json', 'text/csv']
  const cases: Array<[string | undefined, string | undefined]> = [
    [undefined, 'application/json'],
    ['', 'application/json'],
    ['text/csv', 'text/csv'],
    ['text/csv;q=0, application/json', 'application/json'],
    ['text/csv; q=0 , application/json', 'application/json'],
    ['application/json;q=0.5, text/csv', 'text/csv'],
    ['text/csv;q=0.5, application/json;q=0.4', 'text/csv'],
    ['application/json, text/csv', 'application/json'],
    ['text/csv, application/json', 'text/csv'],
    ['*/*', 'application/json'],
    ['text/*', 'text/csv'],
    ['text/*;q=0.1, */*;q=0.2', 'application/json'],
    ['text/csv;charset=utf-8;q=0.9, application/json;q=0.8', 'text/csv'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/json'],
    ['*/*, text/csv;q=0', 'application/json'],
    ['image/png', undefined],
    ['text/csv;q=0', undefined],
    ['garbage, text/csv;q=2', undefined],
  ]
  for (const [header, expected] of cases) t.equal(preferredMediaType(header, offered), expected, JSON.stringify(header))

  const { app } = await buildTestApp(t)
  const http: Array<[string, RegExp]> = [
    ['text/csv;q=0, application/json', /application\/json/],
    ['text/csv', /text\/csv/],
    ['application/json;q=0.5, text/csv', /text\/csv/],
    ['image/png', /application\/json/],
  ]
  for (const [accept, type] of http) {
    for (const url of ['/usage/clients', '/usage/clients/acme/daily', '/usage/clients/acme/users', '/usage/clients/acme/models']) {
      const res = await app.inject({ url, headers: { accept } })
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], type, `${url} with Accept: ${accept}`)
    }
  }
})
