// readDayByClient: the day in one grouped scan, client by client, where a client whose sums cannot
// be read fails alone wherever it sits in client order (first, between others, last, several).
import t from 'tap'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { openDb } from '../../src/db/sqlite/open.js'
import { dayWindow } from '../../src/clock.js'
import { AGGREGATE_SQL, GROUP_SQL, readDayByClient, type GroupSumsTuple } from '../../src/sources/sqlite-sql.js'

const DAY = '2026-11-20'
const WINDOW = dayWindow(DAY, 'Europe/Warsaw')
const AT = Date.parse('2026-11-20T10:00:00Z')

type Kind = 'normal' | 'overflow' | 'tokens'

/** A file with the given clients' records on DAY (and one record of each on the next day, outside the window). */
function store(dir: string, clients: Array<[string, Kind]>): Database.Database {
  const path = join(dir, 'usage.db')
  openDb({ path }).$client.close()
  const conn = new Database(path)
  const insert = conn.prepare(
    `INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens, cost_nano_usd, occurred_at, received_at)
     VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, 0)`,
  )
  conn.transaction(() => {
    for (const [client, kind] of clients) {
      insert.run(`${client}-next-day`, client, 'm', 'u', 1, 1, 1, AT + 86_400_000)
      if (kind === 'overflow') {
        // 9,300 records of 1e15 nano-USD: their SUM passes 2^63, which SQLite refuses to wrap.
        for (let i = 0; i < 9_300; i++) insert.run(`${client}-${i}`, client, 'm', 'u', 1, 1, 1_000_000_000_000_000n, AT)
      } else if (kind === 'tokens') {
        for (let i = 0; i < 2; i++) insert.run(`${client}-${i}`, client, 'm', 'u', 5e15, 5e15, 1, AT)
      } else {
        for (let i = 0; i < 12; i++) insert.run(`${client}-${i}`, client, `m${i % 3}`, `u${i % 2}`, 10 + i, 10 + i, 1_000 + i, AT + i)
      }
    }
  })()
  return conn
}

/** The normal clients' rows as the one grouped SELECT gives them, in the reader's row form. */
function expectedRows(conn: Database.Database, client: string): GroupSumsTuple[] {
  const rows = conn
    .prepare(`${AGGREGATE_SQL} AND client_org_id = @client ${GROUP_SQL} ORDER BY external_user, model`)
    .raw(true)
    .safeIntegers(true)
    .all({ ...WINDOW, client }) as Array<[string, string, string, bigint, bigint, bigint, bigint, bigint]>
  return rows.map((r) => [r[1], r[2], Number(r[3]), Number(r[4]), Number(r[5]), r[6], Number(r[7])])
}

const LAYOUTS: Array<[string, Array<[string, Kind]>]> = [
  ['no failing client', [['a', 'normal'], ['b', 'normal'], ['c', 'normal']]],
  ['a token sum past 2^53 between others', [['a', 'normal'], ['b', 'tokens'], ['c', 'normal']]],
  ['an overflow first', [['a', 'overflow'], ['b', 'normal'], ['c', 'normal']]],
  ['an overflow last', [['a', 'normal'], ['b', 'normal'], ['c', 'overflow']]],
  [
    'overflows and token sums between others',
    [['a', 'normal'], ['b', 'tokens'], ['c', 'normal'], ['d', 'overflow'], ['e', 'normal'], ['f', 'tokens'], ['g', 'overflow'], ['h', 'normal']],
  ],
]

for (const [name, clients] of LAYOUTS) {
  t.test(name, async (t) => {
    const conn = store(t.testdir(), clients)
    t.teardown(() => conn.close())
    const delivered: Array<[string, GroupSumsTuple[]]> = []
    const failed: Array<[string, string]> = []
    readDayByClient(conn, WINDOW, (client, rows) => delivered.push([client, rows]), (client, message) => failed.push([client, message]))

    const normal = clients.filter(([, kind]) => kind === 'normal').map(([c]) => c)
    t.ok(normal.length > 0)
    t.same(
      delivered.map(([c]) => c),
      normal,
      'every readable client once, in client order',
    )
    for (const [client, rows] of delivered) {
      const sorted = [...rows].sort((x, y) => (x[0] + x[1] < y[0] + y[1] ? -1 : 1))
      t.same(sorted, expectedRows(conn, client), `${client}: the grouped SELECT's sums`)
    }
    t.same(
      failed.map(([c]) => c).sort(),
      clients.filter(([, kind]) => kind !== 'normal').map(([c]) => c),
      'every unreadable client once',
    )
    for (const [client, message] of failed) {
      const kind = clients.find(([c]) => c === client)![1]
      t.match(message, kind === 'overflow' ? /integer overflow/ : /exceeds 2\^53/, `${client}: says why`)
    }
    t.equal(conn.inTransaction, false, 'the read transaction is closed')
  })
}
