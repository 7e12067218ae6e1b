// Writing the three summary tables. A day's rows are staged client by client in temporary tables
// of the writer connection as the batch builds them (so a large day is never held in memory), then
// the day is replaced in one transaction by set-based statements: rows that vanished are deleted,
// rows whose values changed are updated, new rows are inserted. Rows whose values did not change
// are left untouched, so a rerun over the same data is byte-identical.
//
// Temporary tables live in the connection's private temp database: filling them takes no lock on
// the main file, so ingestion and reads go on while a day is staged.
import type { Statement } from 'better-sqlite3'
import type { ClientDailyRow } from './schema.js'
import type { Db } from './open.js'
import type { ClientDay, Pricing, Sums } from '../batch/rows.js'
import { nanoToSafeNumber } from '../money.js'

type Column = readonly [name: string, type: 'INTEGER' | 'TEXT']

/** Stored value columns compared to decide "changed", in the order staged rows carry them. */
const MEASURE_COLUMNS: readonly Column[] = [
  ['total_tokens', 'INTEGER'],
  ['input_tokens', 'INTEGER'],
  ['output_tokens', 'INTEGER'],
  ['total_requests', 'INTEGER'],
  ['raw_cost_nano_usd', 'INTEGER'],
  ['markup_cost_nano_usd', 'INTEGER'],
  ['markup_cost_nano_pln', 'INTEGER'],
  ['markup_rate', 'TEXT'],
  ['exchange_rate_usd_pln', 'TEXT'],
  ['exchange_rate_date', 'TEXT'],
  ['data_source', 'TEXT'],
]

interface TableSpec {
  table: string
  /** Natural-key columns besides client_org_id and usage_date. */
  keyColumns: readonly Column[]
  valueColumns: readonly Column[]
}

const USERS: TableSpec = {
  table: 'client_user_daily_usage',
  keyColumns: [
    ['external_user', 'TEXT'],
    ['model', 'TEXT'],
  ],
  valueColumns: MEASURE_COLUMNS,
}
const MODELS: TableSpec = { table: 'client_model_daily_usage', keyColumns: [['model', 'TEXT']], valueColumns: MEASURE_COLUMNS }
const CLIENTS: TableSpec = {
  table: 'client_daily_usage',
  keyColumns: [],
  valueColumns: [...MEASURE_COLUMNS, ['primary_model', 'TEXT'], ['unique_users', 'INTEGER']],
}
const TABLES = [USERS, MODELS, CLIENTS] as const

type Priced = Sums & Pricing

/**
 * A staged row: `keys`, then the priced row's measures in MEASURE_COLUMNS order, money as integers
 * (refusing values past 2^53), then `extra`.
 */
function stagedValues(keys: string[], r: Priced, ...extra: Array<string | number>): Array<string | number | null> {
  return [
    ...keys,
    r.total_tokens,
    r.input_tokens,
    r.output_tokens,
    r.total_requests,
    nanoToSafeNumber(r.raw_cost_nano_usd),
    nanoToSafeNumber(r.markup_cost_nano_usd),
    r.markup_cost_nano_pln === null ? null : nanoToSafeNumber(r.markup_cost_nano_pln),
    r.markup_rate,
    r.exchange_rate_usd_pln,
    r.exchange_rate_date,
    r.data_source,
    ...extra,
  ]
}

export interface CommitDayInput {
  date: string
  runId: number
  /** ISO instant written to created_at / updated_at of rows this run inserts or changes. */
  now: string
  /**
   * Clients whose aggregation failed: their stored rows are left as they were. Every other
   * client of the date that was not staged lost all its raw records and loses its rows.
   */
  failedClients?: ReadonlySet<string>
}

export interface ReplaceDayResult {
  inserted: number
  updated: number
  deleted: number
  unchanged: number
  /** Rows of the day's result set (all three tables) after the replacement. */
  rows: number
}

export interface DayStaging {
  /** Stages one client's rows. A client staged twice is refused (it would be counted twice). */
  add(day: ClientDay): void
  /** Clients staged so far. */
  readonly clients: number
  /** Replaces the date's summary rows by the staged ones in one transaction (SPEC §5 step 5). */
  commit(input: CommitDayInput): ReplaceDayResult
  /** Drops the staging tables; safe to call more than once. */
  dispose(): void
}

interface StagedTable {
  spec: TableSpec
  name: string
  staged: number
  insert: Statement
}

const stagingIds = new WeakMap<object, number>()

/**
 * Opens an empty staging area on the writer connection. Each open gets tables of its own, so two
 * days processed at once (an API run beside a scheduled one) never share them.
 */
export function openDayStaging(db: Db): DayStaging {
  const conn = db.$client
  const id = (stagingIds.get(conn) ?? 0) + 1
  stagingIds.set(conn, id)
  const tables: StagedTable[] = TABLES.map((spec) => {
    // Names are built from a table constant and an integer: nothing from outside reaches the SQL text.
    const name = `temp.${spec.table}_stage_${id}`
    const keyNames = ['client_org_id', ...spec.keyColumns.map(([c]) => c)]
    const columns = [['client_org_id', 'TEXT'] as Column, ...spec.keyColumns, ...spec.valueColumns]
    conn.exec(`DROP TABLE IF EXISTS ${name}`)
    conn.exec(
      `CREATE TABLE ${name} (${columns.map(([c, type]) => `${c} ${type}`).join(', ')}, PRIMARY KEY (${keyNames.join(', ')})) WITHOUT ROWID`,
    )
    return {
      spec,
      name,
      staged: 0,
      insert: conn.prepare(`INSERT INTO ${name} (${columns.map(([c]) => c).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`),
    }
  })
  const [users, models, clients] = tables as [StagedTable, StagedTable, StagedTable]
  let clientCount = 0
  let disposed = false

  const stageClient = conn.transaction((day: ClientDay) => {
    for (const r of day.users) users.insert.run(stagedValues([day.client_org_id, r.external_user, r.model], r))
    for (const r of day.models) models.insert.run(stagedValues([day.client_org_id, r.model], r))
    clients.insert.run(stagedValues([day.client_org_id], day.client, day.client.primary_model, day.client.unique_users))
    users.staged += day.users.length
    models.staged += day.models.length
    clients.staged += 1
  })

  function dispose() {
    if (disposed) return
    disposed = true
    for (const t of tables) conn.exec(`DROP TABLE IF EXISTS ${t.name}`)
  }

  return {
    add(day) {
      if (disposed) throw new Error('day staging already committed or disposed')
      stageClient(day)
      clientCount += 1
    },
    get clients() {
      return clientCount
    },
    commit(input) {
      if (disposed) throw new Error('day staging already committed or disposed')
      const result: ReplaceDayResult = { inserted: 0, updated: 0, deleted: 0, unchanged: 0, rows: 0 }
      const params = { date: input.date, runId: input.runId, now: input.now, failed: JSON.stringify([...(input.failedClients ?? [])]) }
      conn.transaction(() => {
        for (const t of tables) {
          const r = replaceTable(conn, t, params)
          result.inserted += r.inserted
          result.updated += r.updated
          result.deleted += r.deleted
          result.unchanged += t.staged - r.inserted - r.updated
          result.rows += t.staged
        }
      })()
      dispose()
      return result
    },
    dispose,
  }
}

function replaceTable(
  conn: Db['$client'],
  t: StagedTable,
  params: { date: string; runId: number; now: string; failed: string },
): { inserted: number; updated: number; deleted: number } {
  const { spec, name } = t
  const keyNames = spec.keyColumns.map(([c]) => c)
  const valueNames = spec.valueColumns.map(([c]) => c)
  const sameKey = ['client_org_id', ...keyNames].map((c) => `s.${c} = t.${c}`).join(' AND ')
  const target = `main.${spec.table}`
  const hasRows = conn.prepare(`SELECT 1 FROM ${target} WHERE usage_date = ? LIMIT 1`).get(params.date) !== undefined
  let deleted = 0
  let updated = 0
  if (hasRows) {
    deleted = conn
      .prepare(
        `DELETE FROM ${target} AS t WHERE t.usage_date = @date AND t.client_org_id NOT IN (SELECT value FROM json_each(@failed))
           AND NOT EXISTS (SELECT 1 FROM ${name} AS s WHERE ${sameKey})`,
      )
      .run({ date: params.date, failed: params.failed }).changes
    updated = conn
      .prepare(
        `UPDATE ${target} AS t SET ${valueNames.map((c) => `${c} = s.${c}`).join(', ')}, batch_run_id = @runId, updated_at = @now
           FROM ${name} AS s WHERE t.usage_date = @date AND ${sameKey} AND (${valueNames.map((c) => `t.${c} IS NOT s.${c}`).join(' OR ')})`,
      )
      .run({ date: params.date, runId: params.runId, now: params.now }).changes
  }
  const all = ['client_org_id', ...keyNames, ...valueNames]
  const inserted = conn
    .prepare(
      `INSERT INTO ${target} (${all.join(', ')}, usage_date, batch_run_id, created_at, updated_at)
         SELECT ${all.map((c) => `s.${c}`).join(', ')}, @date, @runId, @now, @now FROM ${name} AS s` +
        // A date with no rows yet (a first run) needs no per-row existence check.
        (hasRows ? ` WHERE NOT EXISTS (SELECT 1 FROM ${target} AS t WHERE t.usage_date = @date AND ${sameKey})` : ''),
    )
    .run({ date: params.date, runId: params.runId, now: params.now }).changes
  return { inserted, updated, deleted }
}

/** A summary row's measures and the rates that priced them, as stored. */
export type MeasureRead = Pick<
  ClientDailyRow,
  | 'total_tokens'
  | 'input_tokens'
  | 'output_tokens'
  | 'total_requests'
  | 'raw_cost_nano_usd'
  | 'markup_cost_nano_usd'
  | 'markup_cost_nano_pln'
  | 'markup_rate'
  | 'exchange_rate_usd_pln'
  | 'exchange_rate_date'
>

/** The columns a client's daily read answers with (JSON and CSV). */
export type DailyRead = MeasureRead & Pick<ClientDailyRow, 'usage_date' | 'primary_model' | 'unique_users'>

const DAILY_READ_COLUMNS: ReadonlyArray<keyof DailyRead> = [
  'usage_date',
  'total_tokens',
  'input_tokens',
  'output_tokens',
  'total_requests',
  'raw_cost_nano_usd',
  'markup_cost_nano_usd',
  'markup_cost_nano_pln',
  'markup_rate',
  'exchange_rate_usd_pln',
  'exchange_rate_date',
  'primary_model',
  'unique_users',
]

const dailyRowsStatements = new WeakMap<object, Statement>()

type DailyTuple = [string, number, number, number, number, number, number, number | null, string, string | null, string | null, string, number]

/**
 * A client's daily rows over an inclusive date range, oldest first. This is the hot read of the
 * dashboards: one statement prepared per connection, read straight from better-sqlite3 rather than
 * built by drizzle on every call, only the columns answered, as arrays turned into objects here:
 * better-sqlite3 builds row objects property by property, at about twice the cost of a literal
 * (README, "Benchmark and reliability suite").
 */
export function clientDailyRows(db: Db, clientOrgId: string, from: string, to: string): DailyRead[] {
  let statement = dailyRowsStatements.get(db.$client)
  if (!statement) {
    statement = db.$client
      .prepare(
        `SELECT ${DAILY_READ_COLUMNS.join(', ')} FROM client_daily_usage
         WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ? ORDER BY usage_date`,
      )
      .raw(true)
    dailyRowsStatements.set(db.$client, statement)
  }
  const rows = statement.all(clientOrgId, from, to) as DailyTuple[]
  const out: DailyRead[] = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    // In DAILY_READ_COLUMNS order.
    out[i] = {
      usage_date: r[0],
      total_tokens: r[1],
      input_tokens: r[2],
      output_tokens: r[3],
      total_requests: r[4],
      raw_cost_nano_usd: r[5],
      markup_cost_nano_usd: r[6],
      markup_cost_nano_pln: r[7],
      markup_rate: r[8],
      exchange_rate_usd_pln: r[9],
      exchange_rate_date: r[10],
      primary_model: r[11],
      unique_users: r[12],
    }
  }
  return out
}
