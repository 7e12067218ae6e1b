// The PostgreSQL schema mirrors the SQLite one, and drizzle/postgres is generated from it and
// committed: a table or column added on one side only, or a stale migration, fails here.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { is, SQL } from 'drizzle-orm'
import { getTableConfig as pgTableConfig, PgTable } from 'drizzle-orm/pg-core'
import { getTableConfig as sqliteTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core'
import { migrationsFolder } from '../../src/db/migrations.js'
import { postgresMigrationsFolder } from '../../src/db/postgres/open.js'
import * as pgSchema from '../../src/db/postgres/schema.js'
import * as sqliteSchema from '../../src/db/schema.js'

type Config = ReturnType<typeof sqliteTableConfig> | ReturnType<typeof pgTableConfig>

/** The where clause of a partial index as its SQL text. */
function whereText(where: SQL | undefined): string | undefined {
  return where?.queryChunks.map((chunk) => (chunk && 'value' in chunk ? (chunk.value as string[]).join('') : '?')).join('')
}

/** What both stores must agree on, written so that the SQLite and PostgreSQL types are comparable. */
function shape(config: Config) {
  return {
    columns: config.columns.map((c) => ({
      name: c.name,
      type: c.getSQLType() === 'integer' || c.getSQLType() === 'bigint' ? 'integer' : c.getSQLType().replace(' COLLATE "C"', ''),
      notNull: c.notNull,
      primary: c.primary,
      default: c.default,
    })),
    indexes: config.indexes
      .map((i) => ({ name: i.config.name, unique: i.config.unique, columns: i.config.columns.map((c) => (c as { name: string }).name), where: whereText(i.config.where) }))
      .sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : 1)),
  }
}

const sqliteTables = Object.values(sqliteSchema).filter((v) => is(v, SQLiteTable)).map((table) => sqliteTableConfig(table as SQLiteTable))
const pgTables = Object.values(pgSchema).filter((v) => is(v, PgTable)).map((table) => pgTableConfig(table as PgTable))

t.test('every SQLite table has a PostgreSQL twin: same columns, keys, indexes and partial index', async (t) => {
  t.ok(sqliteTables.length >= 9, `found the SQLite tables (${sqliteTables.length})`)
  t.strictSame(pgTables.map((c) => c.name).sort(), sqliteTables.map((c) => c.name).sort(), 'the same table names')
  for (const sqlite of sqliteTables) {
    const pg = pgTables.find((c) => c.name === sqlite.name)
    if (!pg) continue
    t.strictSame(shape(pg), shape(sqlite), sqlite.name)
  }
  const runs = pgTables.find((c) => c.name === 'influxdb_batch_runs')!
  const single = runs.indexes.find((i) => i.config.name === 'influxdb_batch_runs_one_running_uq')
  t.equal(whereText(single?.config.where), "status = 'running'", 'single-flight: the partial unique index')
})

t.test('PostgreSQL types: money is BIGINT read as bigint, other integers BIGINT read as numbers, text sorts bytewise', async (t) => {
  const columns = pgTables.flatMap((table) => table.columns.map((column) => ({ table: table.name, column })))
  const money = columns.filter(({ column }) => /_nano_(usd|pln)$/.test(column.name))
  t.ok(money.length >= 10, `money columns found (${money.length})`)
  for (const { table, column } of money) t.equal(column.columnType, 'PgBigInt64', `${table}.${column.name} is exact`)
  const integers = columns.filter(({ column }) => column.getSQLType() === 'bigint' && !money.some((m) => m.column === column))
  t.ok(integers.length >= 20)
  for (const { table, column } of integers) t.equal(column.columnType, 'PgBigInt53', `${table}.${column.name}`)
  const others = columns.filter(({ column }) => column.getSQLType() !== 'bigint')
  t.ok(others.length >= 40)
  for (const { table, column } of others) t.equal(column.getSQLType(), 'text COLLATE "C"', `${table}.${column.name}`)
})

t.test('drizzle-kit finds nothing to generate against the committed PostgreSQL migrations', async (t) => {
  const dir = t.testdir({})
  const out = join(dir, 'postgres')
  cpSync(postgresMigrationsFolder(), out, { recursive: true })
  const root = join(migrationsFolder(), '..')
  const config = join(dir, 'drizzle.postgres.config.mjs')
  // drizzle-kit reads `out` relative to its working directory (it prefixes "./").
  writeFileSync(config, `export default { dialect: 'postgresql', schema: './src/db/postgres/schema.ts', out: ${JSON.stringify(relative(root, out))} }\n`)
  const before = readdirSync(out).sort()
  t.ok(before.some((f) => f.endsWith('.sql')), 'there are committed migrations')
  const run = spawnSync(process.execPath, [join(root, 'node_modules/drizzle-kit/bin.cjs'), 'generate', '--config', config], {
    cwd: root,
    encoding: 'utf8',
  })
  const output = `${run.stdout}${run.stderr}`
  t.equal(run.status, 0, output)
  t.same(readdirSync(out).sort(), before, `no new migration (drizzle-kit said: ${output.trim().split('\n').at(-1)})`)
  t.match(output, /No schema changes/, 'drizzle-kit reports the schema in step with drizzle/postgres/')
})
