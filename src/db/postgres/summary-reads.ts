// Reads of the three summary tables in PostgreSQL, column lists from the row descriptors
// (measures.ts) as in SQLite. SUM over BIGINT is NUMERIC here: exact at any size, so a sum past
// 2^63 needs no second form; sql.ts hands it over as a number while safe and a bigint beyond.
import type pg from 'pg'
import { CLIENT_SUMS, DAILY, MODEL_SUMS, USER_MODEL_SUMS, type Column, type CompiledRow, type RowOf } from '../../measures.js'
import { usersWithModels, type ClientSumsRow, type DailyRead, type DayCounts, type ModelSumsRow, type SummaryRepository, type SummaryTable, type UserSumsRow } from '../store.js'
import { arrays, count, holdsNul, rows } from './sql.js'
import { openPostgresDayStaging } from './staging.js'

const SUMMARY_TABLES: readonly SummaryTable[] = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']

/** The sum of a measure over a group; a nullable amount (PLN) is null as soon as one summed row lacks it. */
function summedColumn(c: Column): string {
  const sum = `SUM(${c.key})`
  return `${c.nullable ? `CASE WHEN COUNT(${c.key}) < COUNT(*) THEN NULL ELSE ${sum} END` : sum} AS ${c.key}`
}

function selectList(row: { columns: readonly Column[] }, extras: Record<string, string>): string {
  return row.columns
    .map((c) => (c.key in extras ? `${extras[c.key]} AS ${c.key}` : c.kind === 'count' || c.kind === 'money' ? summedColumn(c) : c.key))
    .join(', ')
}

async function read<Cs extends readonly Column[]>(pool: pg.Pool, row: CompiledRow<Cs>, text: string, values: unknown[]): Promise<RowOf<Cs>[]> {
  const found = await arrays(pool, text, values)
  const out: RowOf<Cs>[] = new Array(found.length)
  for (let i = 0; i < found.length; i++) out[i] = row.fromValues(found[i]!)
  return out
}

const DAILY_SQL = `SELECT ${DAILY.columns.map((c) => c.key).join(', ')} FROM client_daily_usage
  WHERE client_org_id = $1 AND usage_date >= $2 AND usage_date <= $3 ORDER BY usage_date`
const CLIENTS_SQL = `SELECT ${selectList(CLIENT_SUMS, { days_with_usage: 'COUNT(*)' })} FROM client_daily_usage
  WHERE usage_date >= $1 AND usage_date <= $2 GROUP BY client_org_id ORDER BY client_org_id`
const MODELS_SQL = `SELECT ${selectList(MODEL_SUMS, {})} FROM client_model_daily_usage
  WHERE client_org_id = $1 AND usage_date >= $2 AND usage_date <= $3 GROUP BY model ORDER BY SUM(total_tokens) DESC, model`
const USER_MODELS_SQL = `SELECT ${selectList(USER_MODEL_SUMS, {})} FROM client_user_daily_usage
  WHERE client_org_id = $1 AND usage_date >= $2 AND usage_date <= $3
  GROUP BY external_user, model ORDER BY external_user, SUM(total_tokens) DESC, model`

export function createPostgresSummaries(pool: pg.Pool): SummaryRepository {
  return {
    openDayStaging: () => openPostgresDayStaging(pool),

    // PostgreSQL text cannot hold NUL, so a client id with one matches nothing (SQLite would find nothing either).
    clientDaily: async (client, from, to): Promise<DailyRead[]> => (holdsNul(client) ? [] : read(pool, DAILY, DAILY_SQL, [client, from, to])),

    clientsOverview: (from, to): Promise<ClientSumsRow[]> => read(pool, CLIENT_SUMS, CLIENTS_SQL, [from, to]),

    clientModelSums: async (client, from, to): Promise<ModelSumsRow[]> => (holdsNul(client) ? [] : read(pool, MODEL_SUMS, MODELS_SQL, [client, from, to])),

    clientUserSums: async (client, from, to): Promise<UserSumsRow[]> =>
      holdsNul(client) ? [] : usersWithModels(await read(pool, USER_MODEL_SUMS, USER_MODELS_SQL, [client, from, to])),


    async distinctUsers(client, from, to) {
      if (holdsNul(client)) return 0
      const [r] = await arrays(
        pool,
        'SELECT COUNT(DISTINCT external_user) FROM client_user_daily_usage WHERE client_org_id = $1 AND usage_date >= $2 AND usage_date <= $3',
        [client, from, to],
      )
      return count(r![0])
    },

    async dayCounts(table, client, from, to): Promise<DayCounts> {
      // The table name reaches the SQL text: only the three summary tables are accepted.
      if (!SUMMARY_TABLES.includes(table)) throw new Error(`not a summary table: ${table}`)
      if (client !== null && holdsNul(client)) return { days_with_usage: 0, days_missing_pln: 0 }
      const [r] = await arrays(
        pool,
        `SELECT COUNT(DISTINCT usage_date), COUNT(DISTINCT CASE WHEN markup_cost_nano_pln IS NULL THEN usage_date END)
           FROM ${table} WHERE ($1::text IS NULL OR client_org_id = $1) AND usage_date >= $2 AND usage_date <= $3`,
        [client, from, to],
      )
      return { days_with_usage: count(r![0]), days_missing_pln: count(r![1]) }
    },

    async plnMissingByDate(from, to) {
      const found = await rows<{ date: string; clients: number }>(
        pool,
        `SELECT usage_date AS date, count(*) AS clients FROM client_daily_usage
          WHERE markup_cost_nano_pln IS NULL AND usage_date BETWEEN $1 AND $2 GROUP BY usage_date ORDER BY usage_date`,
        [from, to],
      )
      return found.map((r) => ({ date: r.date, clients: count(r.clients) }))
    },

    async dailyMarkupCosts(from, to) {
      const found = await rows<{ client_org_id: string; usage_date: string; markup_cost_nano_usd: number | bigint }>(
        pool,
        'SELECT client_org_id, usage_date, markup_cost_nano_usd FROM client_daily_usage WHERE usage_date BETWEEN $1 AND $2',
        [from, to],
      )
      return found.map((r) => ({ client_org_id: r.client_org_id, usage_date: r.usage_date, markup_cost_nano_usd: Number(r.markup_cost_nano_usd) }))
    },
  }
}
