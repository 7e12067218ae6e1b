// The closed sets of values the store and the HTTP contract share, each written once. The drizzle
// schemas, the TypeBox schemas and the TypeScript types all derive from these arrays
// (docs/data-model.md#tables).

/** Every state of a run in the ledger; `running` is the only open one. */
export const RUN_STATUSES = ['running', 'succeeded', 'succeeded_with_warnings', 'failed', 'abandoned', 'interrupted'] as const
export type RunStatus = (typeof RUN_STATUSES)[number]

/** The closed runs that produced a day's summaries: the only ones that count as "done". */
export const SUCCESS_STATUSES = ['succeeded', 'succeeded_with_warnings'] as const satisfies readonly RunStatus[]

/** Every status a run can be closed with. */
export const CLOSED_RUN_STATUSES = RUN_STATUSES.filter((s): s is Exclude<RunStatus, 'running'> => s !== 'running')
export type ClosedRunStatus = Exclude<RunStatus, 'running'>

/** What started a run. */
export const RUN_TRIGGERS = ['schedule', 'catchup', 'api', 'cli'] as const
export type RunTrigger = (typeof RUN_TRIGGERS)[number]

/**
 * Where a day's raw records were read: the InfluxDB-first mode, or the service's own usage_events
 * table in the SQLite file or in PostgreSQL (DATABASE_URL; docs/postgresql.md#what-the-api-says).
 */
export const DATA_SOURCES = ['influxdb_first', 'sqlite', 'postgresql'] as const
export type DataSource = (typeof DATA_SOURCES)[number]

/** Which NBP table prices a usage date (docs/data-model.md#exchange-rates). */
export const RATE_POLICIES = ['previous-business-day', 'same-day'] as const
export type RatePolicy = (typeof RATE_POLICIES)[number]

/** Where a stored USD/PLN rate came from: NBP, or an admin. */
export const RATE_SOURCES = ['nbp', 'manual'] as const
export type RateSource = (typeof RATE_SOURCES)[number]

/** The alert conditions (docs/operations.md#alerts). */
export const ALERT_KINDS = ['run_failed', 'day_without_success', 'pln_missing', 'cost_spike'] as const
export type AlertKind = (typeof ALERT_KINDS)[number]

/** True when `value` is one of `values` (a narrowing check for text read back from a store). */
export function isOneOf<const T extends readonly string[]>(values: T, value: string): value is T[number] {
  return (values as readonly string[]).includes(value)
}
