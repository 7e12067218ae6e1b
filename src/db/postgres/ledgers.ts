// The small tables in PostgreSQL: USD/PLN rates, per-client markup, the raw archive ledger, alerts
// delivered and the database's own facts. Each write that must be atomic is one statement.
import type pg from 'pg'
import type { AlertRepository, ArchiveRepository, ClientPricingRow, MetadataRepository, PricingRepository, RateRepository, RawArchiveRow } from '../store.js'
import { positiveRateText, requireDate, toUsdPlnRate, type StoredRate } from '../rate-values.js'
import { BUMP_GENERATION, holdsNul, one, rows } from './sql.js'

const RATE_COLUMNS = 'usage_date, rate, effective_date, table_no, source, policy, fetched_at'
const USD_PLN = "currency_from = 'USD' AND currency_to = 'PLN'"

export function createPostgresRates(pool: pg.Pool): RateRepository {
  return {
    async get(usageDate) {
      const row = await one<StoredRate>(pool, `SELECT ${RATE_COLUMNS} FROM daily_exchange_rates WHERE ${USD_PLN} AND usage_date = $1`, [usageDate])
      return row ? toUsdPlnRate(row) : undefined
    },

    async list(from, to) {
      const found = await rows<StoredRate>(
        pool,
        `SELECT ${RATE_COLUMNS} FROM daily_exchange_rates WHERE ${USD_PLN} AND usage_date >= $1 AND usage_date <= $2 ORDER BY usage_date`,
        [from, to],
      )
      return found.map(toUsdPlnRate)
    },

    /**
     * One statement: the upsert skips a manual row, and the statement answers either the row it
     * wrote or (its snapshot predating the write) the manual row that was kept.
     */
    async saveNbp(rate) {
      requireDate('usage_date', rate.usage_date)
      requireDate('effective_date', rate.effective_date)
      const row = await one<StoredRate>(
        pool,
        `WITH generation AS (${BUMP_GENERATION}),
         written AS (
           INSERT INTO daily_exchange_rates (usage_date, currency_from, currency_to, rate, effective_date, table_no, source, policy, fetched_at, note)
           VALUES ($1, 'USD', 'PLN', $2, $3, $4, 'nbp', $5, $6, NULL)
           ON CONFLICT (usage_date, currency_from, currency_to) DO UPDATE
             SET rate = EXCLUDED.rate, effective_date = EXCLUDED.effective_date, table_no = EXCLUDED.table_no,
                 source = EXCLUDED.source, policy = EXCLUDED.policy, fetched_at = EXCLUDED.fetched_at, note = NULL
             WHERE daily_exchange_rates.source <> 'manual'
           RETURNING ${RATE_COLUMNS})
         SELECT * FROM written
         UNION ALL
         SELECT ${RATE_COLUMNS} FROM daily_exchange_rates
          WHERE ${USD_PLN} AND usage_date = $1 AND NOT EXISTS (SELECT 1 FROM written)`,
        [rate.usage_date, positiveRateText(rate.rate), rate.effective_date, rate.table_no, rate.policy, rate.fetched_at],
      )
      if (!row) throw new Error(`daily_exchange_rates ${rate.usage_date}: row missing right after upsert`)
      return toUsdPlnRate(row)
    },

    async setManual(input) {
      requireDate('usage_date', input.usage_date)
      const row = await one<StoredRate>(
        pool,
        // A manual rate is not a published table: it is effective for the date it is set for.
        `WITH generation AS (${BUMP_GENERATION})
         INSERT INTO daily_exchange_rates (usage_date, currency_from, currency_to, rate, effective_date, table_no, source, policy, fetched_at, note)
         VALUES ($1, 'USD', 'PLN', $2, $1, NULL, 'manual', $3, $4, $5)
         ON CONFLICT (usage_date, currency_from, currency_to) DO UPDATE
           SET rate = EXCLUDED.rate, effective_date = EXCLUDED.effective_date, table_no = NULL, source = 'manual',
               policy = EXCLUDED.policy, fetched_at = EXCLUDED.fetched_at, note = EXCLUDED.note
         RETURNING ${RATE_COLUMNS}`,
        [input.usage_date, positiveRateText(input.rate), input.policy ?? 'previous-business-day', input.fetched_at, input.note ?? null],
      )
      return toUsdPlnRate(row!)
    },
  }
}

export function createPostgresPricing(pool: pg.Pool): PricingRepository {
  return {
    history: async (client) =>
      holdsNul(client) ? [] : rows<ClientPricingRow>(pool, 'SELECT * FROM client_pricing WHERE client_org_id = $1 ORDER BY effective_from', [client]),

    append: (entry) =>
      one<ClientPricingRow>(
        pool,
        `WITH generation AS (${BUMP_GENERATION})
         INSERT INTO client_pricing (client_org_id, effective_from, markup_rate, created_at, note) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (client_org_id, effective_from) DO NOTHING RETURNING *`,
        [entry.client_org_id, entry.effective_from, entry.markup_rate, entry.created_at, entry.note ?? null],
      ),

    async inForce(client, date, defaultRate) {
      if (holdsNul(client)) return defaultRate
      const row = await one<{ markup_rate: string }>(
        pool,
        'SELECT markup_rate FROM client_pricing WHERE client_org_id = $1 AND effective_from <= $2 ORDER BY effective_from DESC LIMIT 1',
        [client, date],
      )
      return row?.markup_rate ?? defaultRate
    },

    async allInForce(date) {
      const found = await rows<{ client_org_id: string; markup_rate: string }>(
        pool,
        `SELECT DISTINCT ON (client_org_id) client_org_id, markup_rate FROM client_pricing
          WHERE effective_from <= $1 ORDER BY client_org_id, effective_from DESC`,
        [date],
      )
      return new Map(found.map((r) => [r.client_org_id, r.markup_rate]))
    },
  }
}

export function createPostgresArchives(pool: pg.Pool): ArchiveRepository {
  const get = (date: string) => one<RawArchiveRow>(pool, 'SELECT * FROM raw_archives WHERE usage_date = $1', [date])
  return {
    get,
    list: () => rows<RawArchiveRow>(pool, 'SELECT * FROM raw_archives ORDER BY usage_date'),
    async record(input) {
      await pool.query(
        `INSERT INTO raw_archives (usage_date, file_name, row_count, bytes, sha256, archived_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (usage_date) DO UPDATE SET file_name = EXCLUDED.file_name, row_count = EXCLUDED.row_count, bytes = EXCLUDED.bytes,
           sha256 = EXCLUDED.sha256, archived_at = EXCLUDED.archived_at`,
        [input.date, input.fileName, input.rows, input.bytes, input.sha256, input.fileName === null ? null : input.at],
      )
    },
    async markPurged(date, at) {
      await pool.query('UPDATE raw_archives SET purged_at = $2 WHERE usage_date = $1', [date, at])
    },
    async markRestored(date, at) {
      // A restored day holds its raw rows again: it is no longer purged until retention removes them anew.
      await pool.query('UPDATE raw_archives SET restored_at = $2, purged_at = NULL WHERE usage_date = $1', [date, at])
    },
    isRawPurged: async (date) => Boolean((await get(date))?.purged_at),
  }
}

export function createPostgresAlerts(pool: pg.Pool): AlertRepository {
  return {
    wasSent: async (key) => (await one(pool, 'SELECT 1 FROM alerts_sent WHERE alert_key = $1', [key])) !== undefined,
    async recordSent(alert) {
      await pool.query(
        `INSERT INTO alerts_sent (alert_key, kind, usage_date, client_org_id, sent_at, attempts) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (alert_key) DO NOTHING`,
        [alert.alert_key, alert.kind, alert.usage_date, alert.client_org_id, alert.sent_at, alert.attempts],
      )
    },
  }
}

const CREATED_AT = 'created_at'
const UNDEFINED_TABLE = '42P01'
const CREATED_FROM = 'created_at_from'

/**
 * Records when the database came to be, once (as the SQLite store does: db/sqlite/metadata.ts): a
 * database that predates the record counts from its first run, or from now if it holds data only.
 * Replicas starting together may all call it; the first insert wins, the others change nothing.
 */
export async function recordPostgresDatabaseCreated(pool: pg.Pool, nowMs: number): Promise<void> {
  if (await one(pool, 'SELECT 1 FROM database_metadata WHERE key = $1', [CREATED_AT])) return
  const facts = await one<{ first_run: string | null; has_data: boolean }>(
    pool,
    `SELECT (SELECT min(started_at) FROM influxdb_batch_runs) AS first_run,
            EXISTS (SELECT 1 FROM usage_events) OR EXISTS (SELECT 1 FROM client_daily_usage) AS has_data`,
  )
  const firstRunMs = facts!.first_run === null ? NaN : Date.parse(facts!.first_run)
  let createdMs = nowMs
  let from = 'new_database'
  if (Number.isFinite(firstRunMs) && firstRunMs < nowMs) {
    createdMs = firstRunMs
    from = 'first_run_in_ledger'
  } else if (facts!.has_data || facts!.first_run !== null) {
    from = 'first_open_after_upgrade'
  }
  await pool.query('INSERT INTO database_metadata (key, value) VALUES ($1, $2), ($3, $4) ON CONFLICT (key) DO NOTHING', [
    CREATED_AT,
    new Date(createdMs).toISOString(),
    CREATED_FROM,
    from,
  ])
}

export function createPostgresMetadata(pool: pg.Pool): MetadataRepository {
  return {
    async createdAt() {
      let row: { value: string } | undefined
      try {
        row = await one<{ value: string }>(pool, 'SELECT value FROM database_metadata WHERE key = $1', [CREATED_AT])
      } catch (error) {
        // No such table: a database whose migrations were never applied (readiness reports that).
        if ((error as { code?: unknown }).code === UNDEFINED_TABLE) return null
        throw error
      }
      if (!row) return null
      const ms = Date.parse(row.value)
      return Number.isFinite(ms) ? ms : null
    },
  }
}
