// The tables (docs/data-model.md#tables). Table names are fixed (the Open WebUI side reads them);
// natural keys are UNIQUE.
// Money columns are integers in nano-units and say so in their names; rates are exact decimal text.
// db/postgres/schema.ts repeats these tables on purpose, in pg-core's builders: drizzle types a table
// by its dialect, so the twins cannot share one definition (the one deliberate cross-file duplicate).
import { getTableColumns, index, integer, sql, sqliteTable, text, uniqueIndex } from './drizzle.js'
import { ALERT_KINDS, DATA_SOURCES, RATE_SOURCES, RUN_STATUSES, RUN_TRIGGERS } from './enums.js'

/** One raw record: usage_events, and the same record kept in usage_event_voids once voided. */
function rawRecord() {
  return {
    request_id: text('request_id').primaryKey(),
    client_org_id: text('client_org_id').notNull(),
    model: text('model').notNull(),
    external_user: text('external_user').notNull(),
    input_tokens: integer('input_tokens').notNull(),
    output_tokens: integer('output_tokens').notNull(),
    total_tokens: integer('total_tokens').notNull(),
    cost_nano_usd: integer('cost_nano_usd').notNull(),
    /** Event instant, UTC epoch ms. */
    occurred_at: integer('occurred_at').notNull(),
    /** When the service stored it, UTC epoch ms. */
    received_at: integer('received_at').notNull(),
  }
}

export const usageEvents = sqliteTable(
  'usage_events',
  rawRecord(),
  (t) => [
    index('usage_events_occurred_at_idx').on(t.occurred_at),
    index('usage_events_client_occurred_at_idx').on(t.client_org_id, t.occurred_at),
  ],
)

/** usage_events' columns in table order: the field order of a raw archive line too. */
export const USAGE_EVENT_COLUMNS = Object.keys(getTableColumns(usageEvents)) as Array<keyof typeof usageEvents.$inferSelect>

/**
 * Raw records voided by an admin (docs/api.md#voids): the whole original record, why, and when. A voided
 * record is no longer in usage_events, so no batch and no live read counts it; its request_id stays
 * here for ever, so it can neither be ingested again nor come back with an archive restore.
 */
export const usageEventVoids = sqliteTable(
  'usage_event_voids',
  {
    ...rawRecord(),
    reason: text('reason').notNull(),
    /** When it was voided, UTC epoch ms. */
    voided_at: integer('voided_at').notNull(),
  },
  (t) => [index('usage_event_voids_occurred_at_idx').on(t.occurred_at)],
)

/** Measures shared by the three summary tables. */
function measures() {
  return {
    total_tokens: integer('total_tokens').notNull(),
    input_tokens: integer('input_tokens').notNull(),
    output_tokens: integer('output_tokens').notNull(),
    total_requests: integer('total_requests').notNull(),
    raw_cost_nano_usd: integer('raw_cost_nano_usd').notNull(),
    markup_cost_nano_usd: integer('markup_cost_nano_usd').notNull(),
    /** Null while no USD/PLN rate is known for the day. */
    markup_cost_nano_pln: integer('markup_cost_nano_pln'),
    /** The markup that priced the row, exact decimal text. */
    markup_rate: text('markup_rate').notNull(),
    /** The USD/PLN rate that priced the row (exact decimal text) and its NBP effective date. */
    exchange_rate_usd_pln: text('exchange_rate_usd_pln'),
    exchange_rate_date: text('exchange_rate_date'),
    data_source: text('data_source', { enum: DATA_SOURCES }).notNull(),
    batch_run_id: integer('batch_run_id').notNull(),
    created_at: text('created_at').notNull(),
    updated_at: text('updated_at').notNull(),
  }
}

export const clientDailyUsage = sqliteTable(
  'client_daily_usage',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    client_org_id: text('client_org_id').notNull(),
    usage_date: text('usage_date').notNull(),
    ...measures(),
    primary_model: text('primary_model').notNull(),
    unique_users: integer('unique_users').notNull(),
  },
  (t) => [
    uniqueIndex('client_daily_usage_client_date_uq').on(t.client_org_id, t.usage_date),
    index('client_daily_usage_date_idx').on(t.usage_date),
  ],
)

// The per-user and per-model tables have the same shape on purpose: each spells out its own natural
// key and index names, which the migrations and the Open WebUI side know.
export const clientUserDailyUsage = sqliteTable(
  'client_user_daily_usage',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    client_org_id: text('client_org_id').notNull(),
    usage_date: text('usage_date').notNull(),
    external_user: text('external_user').notNull(),
    model: text('model').notNull(),
    ...measures(),
  },
  (t) => [
    uniqueIndex('client_user_daily_usage_key_uq').on(t.client_org_id, t.usage_date, t.external_user, t.model),
    index('client_user_daily_usage_date_idx').on(t.usage_date),
  ],
)

// Same shape as client_user_daily_usage on purpose (its own natural key and index names).
export const clientModelDailyUsage = sqliteTable(
  'client_model_daily_usage',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    client_org_id: text('client_org_id').notNull(),
    usage_date: text('usage_date').notNull(),
    model: text('model').notNull(),
    ...measures(),
  },
  (t) => [
    uniqueIndex('client_model_daily_usage_key_uq').on(t.client_org_id, t.usage_date, t.model),
    index('client_model_daily_usage_date_idx').on(t.usage_date),
  ],
)

export const dailyExchangeRates = sqliteTable(
  'daily_exchange_rates',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    usage_date: text('usage_date').notNull(),
    currency_from: text('currency_from').notNull(),
    currency_to: text('currency_to').notNull(),
    /** Exact decimal text as published ("4.0341"). */
    rate: text('rate').notNull(),
    effective_date: text('effective_date').notNull(),
    /** NBP table number, e.g. 237/A/NBP/2024; null for a manual rate. */
    table_no: text('table_no'),
    source: text('source', { enum: RATE_SOURCES }).notNull(),
    policy: text('policy').notNull(),
    fetched_at: text('fetched_at').notNull(),
    note: text('note'),
  },
  (t) => [uniqueIndex('daily_exchange_rates_key_uq').on(t.usage_date, t.currency_from, t.currency_to)],
)

export const influxdbBatchRuns = sqliteTable(
  'influxdb_batch_runs',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    processing_date: text('processing_date').notNull(),
    trigger: text('trigger', { enum: RUN_TRIGGERS }).notNull(),
    status: text('status', { enum: RUN_STATUSES }).notNull(),
    started_at: text('started_at').notNull(),
    finished_at: text('finished_at'),
    duration_ms: integer('duration_ms'),
    data_source: text('data_source', { enum: DATA_SOURCES }).notNull(),
    clients_processed: integer('clients_processed').notNull().default(0),
    records_processed: integer('records_processed').notNull().default(0),
    summaries_written: integer('summaries_written').notNull().default(0),
    data_corrections: integer('data_corrections').notNull().default(0),
    exchange_rate_usd_pln: text('exchange_rate_usd_pln'),
    /** JSON array of strings. */
    warnings: text('warnings').notNull().default('[]'),
    error_message: text('error_message'),
    /** JSON array of {client_org_id, error}. */
    client_errors: text('client_errors').notNull().default('[]'),
    /** Which process owns a running run (pid@host), so a live owner is not declared dead. */
    owner: text('owner'),
    heartbeat_at: text('heartbeat_at'),
  },
  (t) => [
    index('influxdb_batch_runs_date_idx').on(t.processing_date),
    index('influxdb_batch_runs_started_idx').on(t.started_at),
    // The cross-process single-flight guard: at most one running run per date, enforced by SQLite
    // itself so that the server, the scheduler and a CLI process cannot run the same day twice.
    uniqueIndex('influxdb_batch_runs_one_running_uq').on(t.processing_date).where(sql`status = 'running'`),
  ],
)

export const clientPricing = sqliteTable(
  'client_pricing',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    client_org_id: text('client_org_id').notNull(),
    effective_from: text('effective_from').notNull(),
    /** Exact decimal text ("1.3"). */
    markup_rate: text('markup_rate').notNull(),
    created_at: text('created_at').notNull(),
    note: text('note'),
  },
  (t) => [uniqueIndex('client_pricing_client_from_uq').on(t.client_org_id, t.effective_from)],
)

/**
 * One row per local day whose raw rows retention removed (or archived): what was removed, and where
 * the archive went. `purged_at` later than `restored_at` means the day's raw rows are gone, so a rerun
 * of it would summarise nothing; the batch refuses such a rerun until the archive is restored.
 */
export const rawArchives = sqliteTable('raw_archives', {
  usage_date: text('usage_date').primaryKey(),
  /** File name inside RAW_ARCHIVE_DIR; null when raw rows were removed without an archive. */
  file_name: text('file_name'),
  row_count: integer('row_count').notNull(),
  /** Size of the gzip file and the sha256 (hex) of its bytes; null without an archive. */
  bytes: integer('bytes'),
  sha256: text('sha256'),
  archived_at: text('archived_at'),
  purged_at: text('purged_at'),
  restored_at: text('restored_at'),
})

/** Alerts delivered, one row per condition (kind, date, client): the dedup key survives a restart. */
export const alertsSent = sqliteTable(
  'alerts_sent',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    alert_key: text('alert_key').notNull(),
    kind: text('kind', { enum: ALERT_KINDS }).notNull(),
    usage_date: text('usage_date').notNull(),
    client_org_id: text('client_org_id'),
    sent_at: text('sent_at').notNull(),
    attempts: integer('attempts').notNull(),
  },
  (t) => [uniqueIndex('alerts_sent_key_uq').on(t.alert_key)],
)

/**
 * Facts about the database itself, one row per key. `created_at` is the instant the database was
 * first opened by a version that records it (see src/db/metadata.ts): days that fell due before it
 * are history, not days the service fell behind on.
 */
export const databaseMetadata = sqliteTable('database_metadata', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
})

export type UsageEventRow = typeof usageEvents.$inferSelect
export type ExchangeRateRow = typeof dailyExchangeRates.$inferSelect
export type BatchRunRow = typeof influxdbBatchRuns.$inferSelect
export type ClientPricingRow = typeof clientPricing.$inferSelect
export type RawArchiveRow = typeof rawArchives.$inferSelect
export type AlertSentRow = typeof alertsSent.$inferSelect
