// Rows moved into PostgreSQL by plain statements, for the PostgreSQL part's limits and set-up: a
// table's columns as the schema declares them, and INSERTs fed with one array per column (the
// fastest plain form with `pg`: docs/postgresql.md#the-driver-pg-node-postgres). Loaded by scenario
// processes: it imports nothing of the product, so it adds nothing to their peak RSS.
import type pg from 'pg'

export interface TableColumn {
  name: string
  /** The column's SQL type as PostgreSQL spells it (format_type), e.g. `bigint`, `text`. */
  type: string
}

type Queryable = pg.Pool | pg.PoolClient | pg.Client

/** `table`'s columns in table order, but the identity `id` (the insert lets the table number rows). */
export async function tableColumns(on: Queryable, table: string): Promise<TableColumn[]> {
  const { rows } = await on.query<TableColumn>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'id' ORDER BY attnum`,
    [table],
  )
  if (rows.length === 0) throw new Error(`table ${table} has no columns`)
  return rows
}

/** Inserts `rows` (values in `columns` order) into `table`, `chunk` rows per statement; returns rows inserted. */
export async function insertRows(on: Queryable, table: string, columns: TableColumn[], rows: unknown[][], chunk = 5_000): Promise<number> {
  // Table and column names come from the schema's own catalogue, never from outside.
  const names = columns.map((c) => `"${c.name}"`).join(', ')
  const text = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ')})`
  let inserted = 0
  for (let from = 0; from < rows.length; from += chunk) {
    const part = rows.slice(from, from + chunk)
    const arrays = columns.map((_, i) => part.map((r) => r[i]))
    inserted += (await on.query(text, arrays)).rowCount ?? 0
  }
  return inserted
}
