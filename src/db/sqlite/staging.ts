// Writing the three summary tables. A day's rows are staged client by client in temporary tables
// of the writer connection as the batch builds them (so a large day is never held in memory), then
// the day is replaced in one transaction by set-based statements: rows that vanished are deleted,
// rows whose values changed are updated, new rows are inserted. Rows whose values did not change
// are left untouched, so a rerun over the same data is byte-identical.
//
// Temporary tables live in the connection's private temp database: filling them takes no lock on
// the main file, so ingestion and reads go on while a day is staged.
import type { Statement } from 'better-sqlite3'
import type { Db } from './open.js'
import { RunNotRunningError, type ClientDay, type CommitDayInput, type DayStaging, type ReplaceDayResult } from '../store.js'
import { compileRow, PRIMARY_MODEL, STORED_MEASURES, UNIQUE_USERS, USER_MODEL_SUMS_ROW, type Column } from '../../measures.js'

/**
 * A summary table as staged: client_org_id, then its other natural-key columns, then the values
 * compared to decide "changed". `row` turns a built row into the values bound after client_org_id:
 * money exactly (a bigint past 2^53), and a value a 64-bit column cannot hold refused (measures.ts),
 * which fails that client's staging only.
 */
function tableSpec<const Cs extends readonly Column[]>(table: string, keyCount: number, columns: Cs) {
  return { table, keyColumns: columns.slice(0, keyCount), valueColumns: columns.slice(keyCount), row: compileRow(columns) }
}
interface TableSpec {
  table: string
  keyColumns: readonly Column[]
  valueColumns: readonly Column[]
}

const [EXTERNAL_USER, MODEL] = USER_MODEL_SUMS_ROW
const USERS = tableSpec('client_user_daily_usage', 2, [EXTERNAL_USER, MODEL, ...STORED_MEASURES])
const MODELS = tableSpec('client_model_daily_usage', 1, [MODEL, ...STORED_MEASURES])
const CLIENTS = tableSpec('client_daily_usage', 0, [...STORED_MEASURES, PRIMARY_MODEL, UNIQUE_USERS])
const TABLES = [USERS, MODELS, CLIENTS] as const

const sqlType = (c: Column) => (c.kind === 'count' || c.kind === 'money' ? 'INTEGER' : 'TEXT')

/** DayStaging (store.ts) as better-sqlite3 does it: synchronously. The store wraps it in promises. */
export interface SyncDayStaging {
  add(day: ClientDay): void
  discard(clientOrgId: string): void
  readonly clients: number
  commit(input: CommitDayInput): ReplaceDayResult
  dispose(): void
}

/** The promise-returning face of a synchronous staging (store.ts DayStaging). */
export function asyncStaging(staging: SyncDayStaging): DayStaging {
  return {
    add: async (day) => staging.add(day),
    discard: async (client) => staging.discard(client),
    get clients() {
      return staging.clients
    },
    commit: async (input) => staging.commit(input),
    dispose: async () => staging.dispose(),
  }
}

interface StagedTable {
  spec: TableSpec
  name: string
  staged: number
  insert: Statement
  discard: Statement
}

const stagingIds = new WeakMap<object, number>()

/**
 * Opens an empty staging area on the writer connection. Each open gets tables of its own, so two
 * days processed at once (an API run beside a scheduled one) never share them. `inCommit` runs inside
 * the commit's transaction (the store moves its write generation there).
 */
export function openDayStaging(db: Db, inCommit?: () => void): SyncDayStaging {
  const conn = db.$client
  const id = (stagingIds.get(conn) ?? 0) + 1
  stagingIds.set(conn, id)
  const tables: StagedTable[] = TABLES.map((spec) => {
    // Names are built from a table constant and an integer: nothing from outside reaches the SQL text.
    const name = `temp.${spec.table}_stage_${id}`
    const keyNames = ['client_org_id', ...spec.keyColumns.map((c) => c.key)]
    const columns = [...spec.keyColumns, ...spec.valueColumns]
    conn.exec(`DROP TABLE IF EXISTS ${name}`)
    conn.exec(
      `CREATE TABLE ${name} (client_org_id TEXT, ${columns.map((c) => `${c.key} ${sqlType(c)}`).join(', ')}, PRIMARY KEY (${keyNames.join(', ')})) WITHOUT ROWID`,
    )
    return {
      spec,
      name,
      staged: 0,
      insert: conn.prepare(`INSERT INTO ${name} (client_org_id, ${columns.map((c) => c.key).join(', ')}) VALUES (?, ${columns.map(() => '?').join(', ')})`),
      discard: conn.prepare(`DELETE FROM ${name} WHERE client_org_id = ?`),
    }
  })
  const [users, models, clients] = tables as [StagedTable, StagedTable, StagedTable]
  const staged = new Set<string>()
  let disposed = false

  const stageClient = conn.transaction((day: ClientDay) => {
    const client = day.client_org_id
    for (const r of day.users) users.insert.run(client, USERS.row.toStored(r))
    for (const r of day.models) models.insert.run(client, MODELS.row.toStored(r))
    clients.insert.run(client, CLIENTS.row.toStored(day.client))
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
      if (staged.has(day.client_org_id)) throw new Error(`client ${JSON.stringify(day.client_org_id)} was staged twice for one day`)
      stageClient(day)
      staged.add(day.client_org_id)
    },
    discard(clientOrgId) {
      if (disposed || !staged.delete(clientOrgId)) return
      for (const t of tables) t.staged -= t.discard.run(clientOrgId).changes
    },
    get clients() {
      return staged.size
    },
    commit(input) {
      if (disposed) throw new Error('day staging already committed or disposed')
      const result: ReplaceDayResult = { inserted: 0, updated: 0, deleted: 0, unchanged: 0, rows: 0 }
      const params = { date: input.date, runId: input.runId, now: input.now, failed: JSON.stringify([...(input.failedClients ?? [])]) }
      // IMMEDIATE: the ledger check and the writes under one write lock, so a run abandoned by
      // another process in between is seen here.
      conn.transaction(() => {
        const ledger = conn.prepare('SELECT status FROM influxdb_batch_runs WHERE id = ?').get(input.runId) as { status: string } | undefined
        if (ledger?.status !== 'running') throw new RunNotRunningError(input.runId, ledger?.status)
        for (const t of tables) {
          const r = replaceTable(conn, t, params)
          result.inserted += r.inserted
          result.updated += r.updated
          result.deleted += r.deleted
          result.unchanged += t.staged - r.inserted - r.updated
          result.rows += t.staged
        }
        inCommit?.()
      }).immediate()
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
  const keyNames = spec.keyColumns.map((c) => c.key)
  const valueNames = spec.valueColumns.map((c) => c.key)
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
