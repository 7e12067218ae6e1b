// Writing the three summary tables in PostgreSQL. A day's rows are staged client by client in TEMP
// tables of one connection, checked out for the whole day (temporary tables belong to a session),
// each client in one statement fed with one array per column (unnest). The commit replaces the day
// in one transaction: it locks the run's ledger row first and refuses a run that is no longer
// running (a survivor marked it abandoned: its owner must not write), deletes rows that vanished,
// and upserts the staged ones, changing only rows whose values differ (IS DISTINCT FROM), so a
// rerun over the same data leaves every row byte-identical.
import type pg from 'pg'
import { compileRow, PRIMARY_MODEL, STORED_MEASURES, UNIQUE_USERS, USER_MODEL_SUMS_ROW, type Column } from '../../measures.js'
import { RunNotRunningError, type ClientDay, type CommitDayInput, type DayStaging, type ReplaceDayResult } from '../store.js'
import { BUMP_GENERATION, isConnectionLevel, one } from './sql.js'

interface TableSpec {
  table: string
  keyColumns: readonly Column[]
  valueColumns: readonly Column[]
  /** A built row's values in column order, refusing what a column cannot hold exactly (measures.ts). */
  toStored(row: never): Array<string | number | bigint | null>
  /** The natural key, as the table's unique index names it. */
  conflictKey: string
}

function tableSpec<const Cs extends readonly Column[]>(table: string, keyCount: number, columns: Cs, conflictKey: string): TableSpec {
  const row = compileRow(columns)
  return { table, keyColumns: columns.slice(0, keyCount), valueColumns: columns.slice(keyCount), toStored: (r: never) => row.toStored(r), conflictKey }
}

const [EXTERNAL_USER, MODEL] = USER_MODEL_SUMS_ROW
const USERS = tableSpec('client_user_daily_usage', 2, [EXTERNAL_USER, MODEL, ...STORED_MEASURES], 'client_org_id, usage_date, external_user, model')
const MODELS = tableSpec('client_model_daily_usage', 1, [MODEL, ...STORED_MEASURES], 'client_org_id, usage_date, model')
const CLIENTS = tableSpec('client_daily_usage', 0, [...STORED_MEASURES, PRIMARY_MODEL, UNIQUE_USERS], 'client_org_id, usage_date')
const TABLES = [USERS, MODELS, CLIENTS] as const

const sqlType = (c: Column) => (c.kind === 'count' || c.kind === 'money' ? 'bigint' : 'text COLLATE "C"')
const arrayType = (c: Column) => (c.kind === 'count' || c.kind === 'money' ? 'bigint[]' : 'text[]')

interface StagedTable {
  spec: TableSpec
  name: string
  staged: number
}

let stagingCounter = 0

export async function openPostgresDayStaging(pool: pg.Pool): Promise<DayStaging> {
  const client = await pool.connect()
  let broken: Error | undefined
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work()
    } catch (error) {
      if (isConnectionLevel(error)) broken ??= error as Error
      throw error
    }
  }
  stagingCounter += 1
  // Names are built from table constants and an integer: nothing from outside reaches the SQL text.
  const tables: StagedTable[] = TABLES.map((spec) => ({ spec, name: `stage_${stagingCounter}_${spec.table}`, staged: 0 }))
  try {
    await client.query(
      tables
        .map(({ spec, name }) => {
          const columns = [...spec.keyColumns, ...spec.valueColumns]
          const key = ['client_org_id', ...spec.keyColumns.map((c) => c.key)]
          return `CREATE TEMP TABLE ${name} (client_org_id text COLLATE "C" NOT NULL, ${columns.map((c) => `${c.key} ${sqlType(c)}`).join(', ')}, PRIMARY KEY (${key.join(', ')}))`
        })
        .join('; '),
    )
  } catch (error) {
    client.release(error as Error)
    throw error
  }
  const [users, models, clients] = tables as [StagedTable, StagedTable, StagedTable]
  const addSql = stageClientSql(users, models, clients)
  const discardSql = `WITH ${tables
    .slice(0, 2)
    .map((t, i) => `d${i} AS (DELETE FROM ${t.name} WHERE client_org_id = $1 RETURNING 1)`)
    .join(', ')}, d2 AS (DELETE FROM ${clients.name} WHERE client_org_id = $1 RETURNING 1)
    SELECT (SELECT count(*) FROM d0) AS users, (SELECT count(*) FROM d1) AS models, (SELECT count(*) FROM d2) AS clients`
  const staged = new Set<string>()
  let disposed = false

  async function dispose() {
    if (disposed) return
    disposed = true
    try {
      if (!broken) await client.query(`DROP TABLE IF EXISTS ${tables.map((t) => t.name).join(', ')}`)
    } catch (error) {
      broken = error as Error
    } finally {
      client.release(broken)
    }
  }

  return {
    async add(day: ClientDay) {
      if (disposed) throw new Error('day staging already committed or disposed')
      if (staged.has(day.client_org_id)) throw new Error(`client ${JSON.stringify(day.client_org_id)} was staged twice for one day`)
      // Converting first: a value a column cannot hold exactly fails this client before any SQL.
      const values = [
        day.client_org_id,
        ...columnArrays(USERS, day.users.map((r) => USERS.toStored(r as never))),
        ...columnArrays(MODELS, day.models.map((r) => MODELS.toStored(r as never))),
        ...CLIENTS.toStored(day.client as never).map((v) => (v === null ? null : String(v))),
      ]
      await run(() => client.query(addSql, values))
      staged.add(day.client_org_id)
      users.staged += day.users.length
      models.staged += day.models.length
      clients.staged += 1
    },

    async discard(clientOrgId) {
      if (disposed || !staged.delete(clientOrgId)) return
      const removed = await run(() => one<{ users: number; models: number; clients: number }>(client, discardSql, [clientOrgId]))
      users.staged -= removed!.users
      models.staged -= removed!.models
      clients.staged -= removed!.clients
    },

    get clients() {
      return staged.size
    },

    async commit(input: CommitDayInput): Promise<ReplaceDayResult> {
      if (disposed) throw new Error('day staging already committed or disposed')
      const result: ReplaceDayResult = { inserted: 0, updated: 0, deleted: 0, unchanged: 0, rows: 0 }
      const failed = [...(input.failedClients ?? [])]
      await run(async () => {
        await client.query('BEGIN')
        try {
          // The run row stays locked until COMMIT: a survivor abandoning it waits, and a run it
          // abandoned first is refused here.
          const ledger = await one<{ status: string }>(client, 'SELECT status FROM influxdb_batch_runs WHERE id = $1 FOR UPDATE', [input.runId])
          if (ledger?.status !== 'running') throw new RunNotRunningError(input.runId, ledger?.status)
          for (const t of tables) {
            const r = await replaceTable(client, t, input, failed)
            result.inserted += r.inserted
            result.updated += r.updated
            result.deleted += r.deleted
            result.unchanged += t.staged - r.inserted - r.updated
            result.rows += t.staged
          }
          await client.query(BUMP_GENERATION)
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch((e: Error) => (broken ??= e))
          throw error
        }
      })
      await dispose()
      return result
    },

    dispose,
  }
}

/** Row values (in column order) as one array per column, money and counts as exact decimal text. */
function columnArrays(spec: TableSpec, stored: Array<Array<string | number | bigint | null>>): unknown[][] {
  const columns = [...spec.keyColumns, ...spec.valueColumns]
  return columns.map((_, i) => stored.map((row) => (row[i] === null ? null : String(row[i]))))
}

/** One statement stages a client's rows in the three tables: all of them or, on any error, none. */
function stageClientSql(users: StagedTable, models: StagedTable, clients: StagedTable): string {
  let n = 1
  const fromArrays = (t: StagedTable) => {
    const columns = [...t.spec.keyColumns, ...t.spec.valueColumns]
    const arrays = columns.map((c) => `$${++n}::${arrayType(c)}`)
    return `INSERT INTO ${t.name} (client_org_id, ${columns.map((c) => c.key).join(', ')}) SELECT $1, * FROM unnest(${arrays.join(', ')})`
  }
  const u = fromArrays(users)
  const m = fromArrays(models)
  const clientColumns = [...clients.spec.keyColumns, ...clients.spec.valueColumns]
  const c = `INSERT INTO ${clients.name} (client_org_id, ${clientColumns.map((col) => col.key).join(', ')})
    VALUES ($1, ${clientColumns.map((col) => `$${++n}::${sqlType(col).replace(' COLLATE "C"', '')}`).join(', ')})`
  return `WITH u AS (${u}), m AS (${m}) ${c}`
}

async function replaceTable(
  client: pg.PoolClient,
  t: StagedTable,
  input: CommitDayInput,
  failed: string[],
): Promise<{ inserted: number; updated: number; deleted: number }> {
  const { spec, name } = t
  const keyNames = spec.keyColumns.map((c) => c.key)
  const valueNames = spec.valueColumns.map((c) => c.key)
  const sameKey = ['client_org_id', ...keyNames].map((c) => `s.${c} = t.${c}`).join(' AND ')
  const deleted = await client.query(
    `DELETE FROM ${spec.table} AS t WHERE t.usage_date = $1 AND NOT (t.client_org_id = ANY($2::text[]))
       AND NOT EXISTS (SELECT 1 FROM ${name} AS s WHERE ${sameKey})`,
    [input.date, failed],
  )
  const all = ['client_org_id', ...keyNames, ...valueNames]
  const counted = await one<{ inserted: number; updated: number }>(
    client,
    `WITH up AS (
       INSERT INTO ${spec.table} AS t (${all.join(', ')}, usage_date, batch_run_id, created_at, updated_at)
       SELECT ${all.map((c) => `s.${c}`).join(', ')}, $1, $2, $3, $3 FROM ${name} AS s
       ON CONFLICT (${spec.conflictKey}) DO UPDATE
         SET ${valueNames.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, batch_run_id = EXCLUDED.batch_run_id, updated_at = EXCLUDED.updated_at
         WHERE (${valueNames.map((c) => `t.${c}`).join(', ')}) IS DISTINCT FROM (${valueNames.map((c) => `EXCLUDED.${c}`).join(', ')})
       RETURNING (xmax = 0) AS inserted)
     SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM up`,
    [input.date, input.runId, input.now],
  )
  return { inserted: counted!.inserted, updated: counted!.updated, deleted: deleted.rowCount ?? 0 }
}
