// Writing and reading the three summary tables. A day is replaced in one transaction; rows whose
// values did not change are left untouched, so a rerun over the same data is byte-identical.
import type { Statement } from 'better-sqlite3'
import type { ClientDailyRow } from './schema.js'
import type { Db } from './open.js'
import type { ClientDay, ClientRow, ModelRow, UserModelRow } from '../batch/rows.js'
import { nanoToSafeNumber } from '../money.js'

interface TableSpec<R> {
  table: string
  /** Natural-key columns besides client_org_id and usage_date. */
  keyColumns: string[]
  /** Stored value columns compared to decide "changed". */
  valueColumns: string[]
  rowsOf(day: ClientDay): R[]
}

const MEASURE_COLUMNS = [
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
  'data_source',
]

const TABLES: TableSpec<UserModelRow | ModelRow | ClientRow>[] = [
  { table: 'client_user_daily_usage', keyColumns: ['external_user', 'model'], valueColumns: MEASURE_COLUMNS, rowsOf: (d) => d.users },
  { table: 'client_model_daily_usage', keyColumns: ['model'], valueColumns: MEASURE_COLUMNS, rowsOf: (d) => d.models },
  {
    table: 'client_daily_usage',
    keyColumns: [],
    valueColumns: [...MEASURE_COLUMNS, 'primary_model', 'unique_users'],
    rowsOf: (d) => [d.client],
  },
]

type Stored = Record<string, string | number | null>

/** The stored form of a built row: bigint money as integers, everything else as is. */
function storedValues(row: object, columns: string[]): Stored {
  const out: Stored = {}
  for (const c of columns) {
    const v = (row as Record<string, unknown>)[c]
    out[c] = typeof v === 'bigint' ? nanoToSafeNumber(v) : (v as string | number | null)
  }
  return out
}

export interface ReplaceDayInput {
  date: string
  runId: number
  /** ISO instant written to created_at / updated_at of rows this run inserts or changes. */
  now: string
  days: ClientDay[]
  /**
   * Clients whose aggregation failed: their stored rows are left as they were. Every other
   * client of the date that is absent from `days` lost all its raw records and loses its rows.
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

interface PreparedTable {
  spec: TableSpec<UserModelRow | ModelRow | ClientRow>
  selectClient: Statement
  insert: Statement
  update: Statement
  deleteById: Statement
  clientsOfDate: Statement
  deleteClient: Statement
}

const prepared = new WeakMap<object, PreparedTable[]>()

function prepare(db: Db): PreparedTable[] {
  const cached = prepared.get(db.$client)
  if (cached) return cached
  const tables = TABLES.map((spec) => {
    const allColumns = ['client_org_id', 'usage_date', ...spec.keyColumns, ...spec.valueColumns, 'batch_run_id', 'created_at', 'updated_at']
    return {
      spec,
      selectClient: db.$client.prepare(
        `SELECT id, ${[...spec.keyColumns, ...spec.valueColumns].join(', ')} FROM ${spec.table} WHERE client_org_id = ? AND usage_date = ?`,
      ),
      insert: db.$client.prepare(
        `INSERT INTO ${spec.table} (${allColumns.join(', ')}) VALUES (${allColumns.map((c) => '@' + c).join(', ')})`,
      ),
      update: db.$client.prepare(
        `UPDATE ${spec.table} SET ${[...spec.valueColumns, 'batch_run_id', 'updated_at'].map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`,
      ),
      deleteById: db.$client.prepare(`DELETE FROM ${spec.table} WHERE id = ?`),
      clientsOfDate: db.$client.prepare(`SELECT DISTINCT client_org_id FROM ${spec.table} WHERE usage_date = ?`).pluck(),
      deleteClient: db.$client.prepare(`DELETE FROM ${spec.table} WHERE client_org_id = ? AND usage_date = ?`),
    }
  })
  prepared.set(db.$client, tables)
  return tables
}

function keyOf(row: Record<string, unknown>, keyColumns: string[]): string {
  return JSON.stringify(keyColumns.map((c) => row[c]))
}

/** Replaces the date's summary rows in one transaction (SPEC §5 step 5). */
export function replaceDaySummaries(db: Db, input: ReplaceDayInput): ReplaceDayResult {
  const tables = prepare(db)
  const result: ReplaceDayResult = { inserted: 0, updated: 0, deleted: 0, unchanged: 0, rows: 0 }
  db.$client.transaction(() => {
    const present = new Set(input.days.map((d) => d.client_org_id))
    for (const t of tables) {
      const { spec } = t
      for (const day of input.days) {
        const existing = new Map<string, Stored & { id: number }>()
        for (const row of t.selectClient.all(day.client_org_id, input.date) as Array<Stored & { id: number }>) {
          existing.set(keyOf(row, spec.keyColumns), row)
        }
        for (const row of spec.rowsOf(day)) {
          result.rows += 1
          const values = storedValues(row, spec.valueColumns)
          const key = keyOf(row as unknown as Record<string, unknown>, spec.keyColumns)
          const old = existing.get(key)
          if (!old) {
            t.insert.run({
              client_org_id: day.client_org_id,
              usage_date: input.date,
              ...storedValues(row, spec.keyColumns),
              ...values,
              batch_run_id: input.runId,
              created_at: input.now,
              updated_at: input.now,
            })
            result.inserted += 1
            continue
          }
          existing.delete(key)
          if (spec.valueColumns.every((c) => old[c] === values[c])) {
            result.unchanged += 1
          } else {
            t.update.run({ ...values, id: old.id, batch_run_id: input.runId, updated_at: input.now })
            result.updated += 1
          }
        }
        for (const gone of existing.values()) {
          t.deleteById.run(gone.id)
          result.deleted += 1
        }
      }
      for (const client of t.clientsOfDate.all(input.date) as string[]) {
        if (present.has(client) || input.failedClients?.has(client)) continue
        result.deleted += t.deleteClient.run(client, input.date).changes
      }
    }
  })()
  return result
}

const dailyRowsStatements = new WeakMap<object, Statement>()

/**
 * A client's daily rows over an inclusive date range, oldest first. This is the hot read of the
 * dashboards: one statement prepared per connection, read straight from better-sqlite3 rather than
 * built by drizzle on every call (the query builder and its row mapping cost more than SQLite's own
 * indexed lookup — see docs/readme/benchmark.md). Property names of the schema equal its column
 * names, so `SELECT *` rows have exactly the shape of `$inferSelect`.
 */
export function clientDailyRows(db: Db, clientOrgId: string, from: string, to: string): ClientDailyRow[] {
  let statement = dailyRowsStatements.get(db.$client)
  if (!statement) {
    statement = db.$client.prepare(
      'SELECT * FROM client_daily_usage WHERE client_org_id = ? AND usage_date >= ? AND usage_date <= ? ORDER BY usage_date',
    )
    dailyRowsStatements.set(db.$client, statement)
  }
  return statement.all(clientOrgId, from, to) as ClientDailyRow[]
}
