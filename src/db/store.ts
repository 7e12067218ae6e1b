// The store: everything the service keeps (summaries, the run ledger, rates, pricing, archives,
// alerts, voids, and the raw events when they are not in InfluxDB), behind one asynchronous
// interface with two implementations: SQLite (src/db/sqlite/) and PostgreSQL (src/db/postgres/).
// The batch, the routes, the scheduler, the lifecycle and the CLI see only this.
//
// Rules every implementation keeps:
// - Every method is asynchronous; an implementation over a synchronous driver answers with
//   already-resolved promises and does its work before returning (no per-row promises).
// - No transaction object crosses the interface: each operation that must be atomic is one method
//   (runs.claim, runs.finish, a day staging's commit, rates.saveNbp, voids.void, rawEvents.ingest,
//   rawEvents.restore, runs.closedTotals' single snapshot).
// - Rows are the schema's rows (src/db/schema.ts; src/db/postgres/schema.ts has the same columns).
//   Money is in nano-units: a number while within ±(2^53 − 1), a bigint beyond (money.ts Nano), so
//   JSON built from either store is byte-identical.
// - Text compares and sorts as bytes (SQLite BINARY, PostgreSQL COLLATE "C"): every "ordered by"
//   below means byte order of the UTF-8 text.
// - A method that cannot reach or use the store rejects; it never answers "nothing" instead.
import type { Static } from 'typebox'
import type { StorageResponse } from '../schemas/storage.js'
import { sumMeasures, type RowOf, type CLIENT_SUMS_ROW, type DAILY_ROW, type MODEL_SUMS_ROW, type STORED_MEASURES, type USER_SUMS_ROW } from '../measures.js'
import type { EventConflict, UsageEvent, VoidedEvent } from '../usage-event.js'
import type { ClosedRunStatus, DataSource, RatePolicy, RateSource, RunStatus, RunTrigger } from './enums.js'
import type {
  AlertSentRow,
  BatchRunRow,
  ClientPricingRow,
  ExchangeRateRow,
  RawArchiveRow,
  UsageEventRow,
} from './schema.js'
import type { SessionLock } from './postgres/advisory-locks.js'

export type { AlertSentRow, BatchRunRow, ClientPricingRow, RawArchiveRow, UsageEventRow }

/** A half-open interval of instants, [startMs, endMs), epoch ms. */
export interface TimeWindow {
  startMs: number
  endMs: number
}

// ---------------------------------------------------------------------------------------------
// The run ledger (influxdb_batch_runs)

export interface ClaimInput {
  date: string
  trigger: RunTrigger
  dataSource: DataSource
  /** ISO instant; also the first heartbeat. */
  startedAt: string
  /** Which process runs it (pid@host), so a live owner is not declared dead. */
  owner: string
}

export interface ClaimResult {
  run: BatchRunRow
  /** False when another run of the date was already running (any process, any replica); `run` is that run. */
  claimed: boolean
}

export interface RunOutcome {
  status: ClosedRunStatus
  finished_at: string
  duration_ms: number
  clients_processed?: number
  records_processed?: number
  summaries_written?: number
  data_corrections?: number
  exchange_rate_usd_pln?: string | null
  warnings?: string[]
  error_message?: string | null
  client_errors?: ClientError[]
}

/** One client the run could not aggregate or write, and why. */
export interface ClientError {
  client_org_id: string
  error: string
}

export interface ListRunsFilter {
  from?: string
  to?: string
  status?: RunStatus
  /** Only runs with an id below this (newest-first paging). */
  beforeId?: number
  limit: number
}

/** What the closed runs of one status × trigger add up to (the ledger side of /metrics). */
export interface ClosedRunTotals {
  status: ClosedRunStatus
  trigger: RunTrigger
  runs: number
  records: number
  summaries: number
  corrections: number
  /** Runs that recorded per-client errors (client_errors not empty). */
  runsWithClientErrors: number
  /** Runs with a duration (abandoned runs have none), their summed duration, and per bound the runs at or below it. */
  timedRuns: number
  durationMsSum: number
  runsAtOrBelowMs: number[]
}

/**
 * The ledger totals as one snapshot. Ids only grow and closed runs never change, so every run at or
 * below `settledThroughId` (one less than the oldest running run, or the newest id when none runs)
 * is final: a caller keeps their totals and asks only for what came after.
 */
export interface ClosedTotalsRead {
  settledThroughId: number
  /** Closed runs with knownSettledThroughId < id ≤ settledThroughId (empty when nothing new settled). */
  newlySettled: ClosedRunTotals[]
  /** Closed runs with id > max(settledThroughId, knownSettledThroughId). */
  unsettled: ClosedRunTotals[]
}

export interface RunRepository {
  /**
   * Opens a `running` run for the date, or answers the one already running: at most one running run
   * per date, enforced by the store itself (the partial unique index influxdb_batch_runs_one_running_uq),
   * so processes and replicas that claim the same date at once all get the same run. Atomic.
   */
  claim(input: ClaimInput): Promise<ClaimResult>
  /**
   * Closes a running run and answers the closed row; a run no longer running is left as it is and
   * answered as stored. Messages (error_message, warnings, client errors) are stored redacted.
   */
  finish(id: number, outcome: RunOutcome): Promise<BatchRunRow>
  get(id: number): Promise<BatchRunRow | undefined>
  /** Every running run, any process, by id. */
  running(): Promise<BatchRunRow[]>
  /** Newest first by id (ids only grow, so an id cursor is stable under concurrent claims). */
  list(filter: ListRunsFilter): Promise<BatchRunRow[]>
  /** Stamps a running run as alive at `at` (ISO, the owner's clock); nothing for a closed run. */
  heartbeat(id: number, at: string): Promise<void>
  /**
   * Marks `running` runs whose owner is gone as `abandoned` (finished_at = `finishedAt`, a fixed
   * message) and answers them. `isOwnerAlive` decides per run, from its owner and heartbeat. A run
   * closed meanwhile, or whose heartbeat changed since it was read, is left alone: its owner lives.
   */
  abandonDead(isOwnerAlive: (run: BatchRunRow) => boolean, finishedAt: string): Promise<BatchRunRow[]>
  /** True when a run of the date succeeded (with or without warnings) with an id below (`before`) or above (`after`) `id`. */
  hasSuccessBeside(date: string, id: number, side: 'before' | 'after'): Promise<boolean>
  /** The latest processing_date with a successful run, or null. */
  lastSuccessDate(): Promise<string | null>
  /** The earliest processing_date in the ledger, or null when it is empty. */
  firstProcessingDate(): Promise<string | null>
  /** Of the dates given, those with a successful run. */
  datesWithSuccess(dates: readonly string[]): Promise<Set<string>>
  /** Of the dates given, those with a running run whose heartbeat is at or after `freshSince` (ISO). */
  datesInProgress(dates: readonly string[], freshSince: string): Promise<Set<string>>
  /**
   * Of the dates given, those whose PLN is still missing: a client_daily_usage row without
   * markup_cost_nano_pln, or (a day without usage has no rows) a latest successful run that
   * recorded no USD/PLN rate.
   */
  datesWithPlnMissing(dates: readonly string[]): Promise<Set<string>>
  /** The newest closed run (by id) with one of the triggers. */
  lastClosed(triggers: readonly RunTrigger[]): Promise<BatchRunRow | undefined>
  /** Dates in [from, to] whose latest closed run failed, one run per date, by date. */
  unresolvedFailures(from: string, to: string): Promise<BatchRunRow[]>
  /** started_at of every successful run of the date (retention compares them with arrivals). */
  successStartTimes(date: string): Promise<string[]>
  /**
   * Closed runs grouped by status and trigger with their summed figures and, per bound of
   * `boundsMs`, the runs whose duration is at or below it — read in one snapshot.
   */
  closedTotals(boundsMs: readonly number[], knownSettledThroughId: number): Promise<ClosedTotalsRead>
}

// ---------------------------------------------------------------------------------------------
// The three summary tables

/** Every value a summary row stores beside its key (measures.ts STORED_MEASURES). */
export type SummaryValues = RowOf<typeof STORED_MEASURES> & { data_source: DataSource }
export type UserModelSummary = SummaryValues & { external_user: string; model: string }
export type ModelSummary = SummaryValues & { model: string }
export type ClientSummary = SummaryValues & { primary_model: string; unique_users: number }

/** One client's rows of one day, as the batch builds them and a day staging takes them. */
export interface ClientDay {
  client_org_id: string
  client: ClientSummary
  models: ModelSummary[]
  users: UserModelSummary[]
}

export interface CommitDayInput {
  date: string
  runId: number
  /** ISO instant written to created_at / updated_at of rows this run inserts or changes. */
  now: string
  /**
   * Clients whose aggregation failed: their stored rows are left as they were. Every other client
   * of the date that was not staged lost all its raw records and loses its rows.
   */
  failedClients?: ReadonlySet<string>
}

/** Why a day's commit was refused: its run is no longer running (abandoned by a survivor, or closed). */
export class RunNotRunningError extends Error {
  override name = 'RunNotRunningError'
  constructor(runId: number, status: string | undefined) {
    super(
      status === undefined
        ? `run ${runId} is not in the ledger: the day was not written`
        : `run ${runId} is ${status}, no longer running (its owner was declared dead): the day was not written`,
    )
  }
}

export interface ReplaceDayResult {
  inserted: number
  updated: number
  deleted: number
  unchanged: number
  /** Rows of the day's result set (all three tables) after the replacement. */
  rows: number
}

/**
 * A day's rows, staged client by client as the batch builds them (never the whole day in memory),
 * then put in place by one atomic commit. Rows whose values did not change are left untouched, so
 * a rerun over the same data is byte-identical. One staging per day being processed; two stagings
 * open at once never see each other's rows.
 */
export interface DayStaging {
  /**
   * Stages one client's rows, all or none. Rejects with an error for which `store.isStoreFailure`
   * is false when the client's own data cannot be stored (a client staged twice, a value a column
   * cannot hold exactly): that client alone fails, nothing of it is staged. Any other rejection
   * means the store cannot be used and fails the day.
   */
  add(day: ClientDay): Promise<void>
  /** Removes a client's staged rows, if any: the commit then leaves its stored rows as they were. */
  discard(clientOrgId: string): Promise<void>
  /** Clients staged so far (added and not discarded). */
  readonly clients: number
  /**
   * Replaces the date's rows in all three tables by the staged ones in one transaction: staged rows
   * that are new are inserted, changed ones updated (batch_run_id, updated_at), rows of clients
   * neither staged nor failed deleted. Disposes the staging. Rejects with RunNotRunningError, and
   * writes nothing, when the run is not `running` in the ledger (a survivor marked it abandoned:
   * its owner must not write the day any more).
   */
  commit(input: CommitDayInput): Promise<ReplaceDayResult>
  /** Drops what is staged; safe to call more than once, and after commit. */
  dispose(): Promise<void>
}

/** One day of one client, as stored (money in nano-units). */
export type DailyRead = RowOf<typeof DAILY_ROW>
/** A client's sums over a range, with the days it had usage. */
export type ClientSumsRow = RowOf<typeof CLIENT_SUMS_ROW>
export type ModelSumsRow = RowOf<typeof MODEL_SUMS_ROW>
export type UserSumsRow = RowOf<typeof USER_SUMS_ROW> & {
  /** The user's per-model breakdown; the user's sums are the sums of these. */
  models: ModelSumsRow[]
}

/**
 * Per-user sums, each with its per-model rows, from per-(user, model) rows ordered by user: what
 * clientUserSums answers, the same way in both stores.
 */
export function usersWithModels(rows: Iterable<ModelSumsRow & { external_user: string }>): UserSumsRow[] {
  const byUser = new Map<string, ModelSumsRow[]>()
  for (const { external_user, ...model } of rows) {
    let models = byUser.get(external_user)
    if (!models) {
      models = []
      byUser.set(external_user, models)
    }
    models.push(model)
  }
  return [...byUser].map(([external_user, models]) => ({ external_user, ...sumMeasures(models), models }))
}

/** Days in a range that have summary rows, and how many of them lack PLN on some row. */
export interface DayCounts {
  days_with_usage: number
  days_missing_pln: number
}

export type SummaryTable = 'client_daily_usage' | 'client_user_daily_usage' | 'client_model_daily_usage'

export interface SummaryRepository {
  /** An empty staging area for one day (see DayStaging). */
  openDayStaging(): Promise<DayStaging>
  /** A client's daily rows over [from, to], oldest first. The dashboards' hottest read. */
  clientDaily(clientOrgId: string, from: string, to: string): Promise<DailyRead[]>
  /**
   * Every client with usage in [from, to] with its sums and days with usage, by client id. Money
   * sums are exact at any size; a nullable sum (PLN) is null as soon as one summed row lacks it.
   */
  clientsOverview(from: string, to: string): Promise<ClientSumsRow[]>
  /** A client's per-model sums over [from, to] (client_model_daily_usage): most tokens first, then by model. */
  clientModelSums(clientOrgId: string, from: string, to: string): Promise<ModelSumsRow[]>
  /**
   * A client's per-user sums over [from, to] (client_user_daily_usage), by user, each with its
   * per-model breakdown: most tokens first, then by model.
   */
  clientUserSums(clientOrgId: string, from: string, to: string): Promise<UserSumsRow[]>
  /** Distinct external_user values of a client over [from, to] (not a sum of daily counts). */
  distinctUsers(clientOrgId: string, from: string, to: string): Promise<number>
  /** Days with rows in a table over [from, to] (one client, or all for null), and how many lack PLN on some row. */
  dayCounts(table: SummaryTable, clientOrgId: string | null, from: string, to: string): Promise<DayCounts>
  /** Dates in [from, to] with client rows lacking PLN, and how many clients each, by date. */
  plnMissingByDate(from: string, to: string): Promise<Array<{ date: string; clients: number }>>
  /** Every client's marked-up USD cost per day over [from, to] (cost spike alerts; a double is precise enough there). */
  dailyMarkupCosts(from: string, to: string): Promise<Array<{ client_org_id: string; usage_date: string; markup_cost_nano_usd: number }>>
}

// ---------------------------------------------------------------------------------------------
// USD/PLN rates (daily_exchange_rates)

/** The rate that prices a usage date, with its evidence (docs/data-model.md#exchange-rates). */
export type UsdPlnRate = Pick<ExchangeRateRow, 'usage_date' | 'rate' | 'effective_date' | 'table_no' | 'fetched_at'> & {
  source: RateSource
  policy: RatePolicy
}

/** A rate fetched from NBP, before it is stored. */
export type NbpRateInput = Omit<UsdPlnRate, 'source'>

export interface ManualRateInput {
  usage_date: string
  /** Decimal text or JSON number; stored as canonical exact decimal text. */
  rate: string | number
  note?: string | null
  /** ISO instant the admin set it. */
  fetched_at: string
  /** The policy in force when it was set, so the row says which rule the rate stands in for (default previous-business-day). */
  policy?: RatePolicy
}

export interface RateRepository {
  /** The stored USD/PLN rate of a usage date, NBP or manual. */
  get(usageDate: string): Promise<UsdPlnRate | undefined>
  /** Stored rates with from ≤ usage_date ≤ to, oldest first. */
  list(from: string, to: string): Promise<UsdPlnRate[]>
  /**
   * Stores an NBP rate unless a manual rate is stored for the date, and answers the rate stored
   * afterwards (the NBP one, or the manual one that was kept), atomically. Rejects a RangeError for
   * a rate that is not a positive decimal or a malformed date.
   */
  saveNbp(rate: NbpRateInput): Promise<UsdPlnRate>
  /** Sets (or replaces) the manual rate of a date; it replaces an NBP rate too, and NBP never replaces it. */
  setManual(input: ManualRateInput): Promise<UsdPlnRate>
}

// ---------------------------------------------------------------------------------------------
// Per-client markup (client_pricing)

export interface PricingEntryInput {
  client_org_id: string
  effective_from: string
  /** Canonical exact decimal text. */
  markup_rate: string
  created_at: string
  note?: string | null
}

export interface PricingRepository {
  /** A client's entries, oldest effective_from first. */
  history(clientOrgId: string): Promise<ClientPricingRow[]>
  /** Appends an entry; undefined when the client already has one for that effective date. */
  append(entry: PricingEntryInput): Promise<ClientPricingRow | undefined>
  /** The markup in force for (client, date): the latest entry effective on or before the date, else `defaultRate`. */
  inForce(clientOrgId: string, date: string, defaultRate: string): Promise<string>
  /** inForce for every client with an entry on or before the date (the batch asks once per day). */
  allInForce(date: string): Promise<Map<string, string>>
}

// ---------------------------------------------------------------------------------------------
// Raw archives (raw_archives), alerts sent (alerts_sent), the database's own facts

export interface ArchiveRecordInput {
  date: string
  /** Null when the day's raw rows were removed without an archive. */
  fileName: string | null
  rows: number
  bytes: number | null
  sha256: string | null
  at: string
}

export interface ArchiveRepository {
  get(date: string): Promise<RawArchiveRow | undefined>
  /** Every day with a record, by date. */
  list(): Promise<RawArchiveRow[]>
  /** Records (or replaces) the archive of a day. */
  record(input: ArchiveRecordInput): Promise<void>
  /** The day's raw rows are gone. */
  markPurged(date: string, at: string): Promise<void>
  /** The day's raw rows are back (no longer purged until retention removes them anew). */
  markRestored(date: string, at: string): Promise<void>
  /** True when retention removed the day's raw rows and no restore followed: a rerun would bill less than was used. */
  isRawPurged(date: string): Promise<boolean>
}

export type NewAlertSent = Omit<AlertSentRow, 'id'>

export interface AlertRepository {
  /** True when an alert with this key was delivered (by any process). */
  wasSent(key: string): Promise<boolean>
  /** Records a delivered alert; a key already recorded is left as it is. */
  recordSent(alert: NewAlertSent): Promise<void>
}

export interface MetadataRepository {
  /**
   * When the database came to be (epoch ms), recorded at its first open; null on a database whose
   * migrations were never applied. Days due before it are history, not days the service owes.
   */
  createdAt(): Promise<number | null>
}

// ---------------------------------------------------------------------------------------------
// Raw records in the store itself (the embedded mode; unused when InfluxDB holds them)

export interface VoidResult {
  /** Records voided by this call, in request order. */
  voided: VoidedEvent[]
  /** Request ids with no stored record (never ingested, or removed by retention). */
  not_found: string[]
  /** Request ids voided earlier: nothing changes for them. */
  already_voided: string[]
}

export interface VoidRepository {
  /**
   * Moves each found record to usage_event_voids with the reason and time, in one transaction;
   * a request id repeated in the list counts once.
   */
  void(requestIds: readonly string[], reason: string, nowMs: number): Promise<VoidResult>
  /** Voids of records whose instant lies in the window, by the record's instant, then request id. */
  list(window: TimeWindow): Promise<VoidedEvent[]>
  /** Request ids of the records voided in the window (archives compare against them). */
  requestIdsIn(window: TimeWindow): Promise<Set<string>>
}

export interface IngestOutcome {
  /** Records stored by this call (0 when there are conflicts). */
  accepted: number
  /**
   * Records refused: a request_id stored with other content, or voided. Non-empty means nothing of
   * the call was stored (one transaction). A request_id stored with the same content is neither
   * accepted nor a conflict: a duplicate.
   */
  conflicts: EventConflict[]
}

/** A raw row as it is archived: every column of usage_events (docs/operations.md#archives). */
export type ArchiveLine = UsageEventRow

/** The raw rows of a day that an archive (and the deletion after it) covers. */
export interface DaySelection extends TimeWindow {
  date: string
  /** Only rows received at or before this instant: later arrivals are not yet summarised. */
  maxReceivedAt: number
}

export interface RawDayStats {
  rows: number
  /** The latest received_at of the window's rows, null without rows. */
  maxReceivedAt: number | null
  /** The latest voided_at of the window's voids (a void changes a day as an arrival does), null without voids. */
  lastVoidedAt: number | null
}

export interface RawEventRepository {
  /**
   * Stores new records idempotently by request_id, all in one transaction, `received_at` =
   * receivedAtMs. Refuses the whole call (conflicts listed, nothing stored) when a record's
   * request_id is stored with other content or voided. Records whose request_id is stored with the
   * same content, or repeated in the call, are duplicates.
   */
  ingest(events: readonly UsageEvent[], receivedAtMs: number): Promise<IngestOutcome>
  /** The earliest occurred_at in [fromMs, beforeMs), or null. */
  earliestBetween(fromMs: number, beforeMs: number): Promise<number | null>
  dayStats(window: TimeWindow): Promise<RawDayStats>
  /** Rows of the window received at or before maxReceivedAt. */
  countSelected(selection: DaySelection): Promise<number>
  /** Deletes at most `limit` of the selected rows in one short transaction; answers how many. */
  deleteSelected(selection: DaySelection, limit: number): Promise<number>
  /**
   * The selected rows ordered by request_id (bytes), streamed: never the whole day in memory, and
   * other store calls may run while it is iterated.
   */
  exportDay(selection: DaySelection): AsyncIterable<ArchiveLine>
  /**
   * Loads archived rows back in one transaction: a row whose request_id is stored already is a
   * duplicate, one that was voided since is skipped (counted in `voided`).
   */
  restore(rows: readonly ArchiveLine[]): Promise<{ inserted: number; voided: number }>
  /** Rows, earliest and latest occurred_at of the whole table. */
  extent(): Promise<{ rows: number; oldestMs: number | null; newestMs: number | null }>
  /** Rows of the window and, when asked, an estimate of their stored bytes (0 otherwise). */
  countIn(window: TimeWindow, estimateBytes: boolean): Promise<{ rows: number; bytes: number }>
  /** Bytes of usage_events and its indexes as the engine counts them, or null when it cannot say. */
  tableBytes(): Promise<number | null>
  /**
   * Hands space freed by deletes back to the operating system in steps of `pagesPerStep`, awaiting
   * `between` after each step; answers the pages freed (0 where the engine reclaims by itself).
   */
  reclaimFreeSpace(pagesPerStep: number, between: () => Promise<void>): Promise<number>
}

// ---------------------------------------------------------------------------------------------
// The store

/** The /health component of the store (the response calls it `sqlite`, whatever the engine). */
export interface StoreHealth {
  status: 'up' | 'down'
  detail: Record<string, unknown>
}

export type Readiness = { ready: true } | { ready: false; reason: string }

/** What the store occupies on disk: the `sqlite` block of GET /batch/storage. */
export type StoreDiskUsage = Static<typeof StorageResponse>['sqlite']

export type { SessionLock }

/** The database_metadata row holding the store's write generation (Store.generation), on both engines. */
export const GENERATION_KEY = 'write_generation'

export interface Store {
  readonly engine: 'sqlite' | 'postgresql'
  readonly runs: RunRepository
  readonly summaries: SummaryRepository
  readonly rates: RateRepository
  readonly pricing: PricingRepository
  readonly archives: ArchiveRepository
  readonly alerts: AlertRepository
  readonly metadata: MetadataRepository
  readonly voids: VoidRepository
  readonly rawEvents: RawEventRepository
  /** Readiness: the store answers a read and every migration is applied. Cheap; never cached. */
  ready(): Promise<Readiness>
  /** For /health: the store answers, accepts a write and is migrated. The detail never holds a driver's message. */
  health(): Promise<StoreHealth>
  diskUsage(): Promise<StoreDiskUsage>
  /**
   * The store's write generation: a token that changes with every committed write that can change
   * what the summary reads answer (a day's summaries replaced, a rate saved, a markup appended,
   * records voided), whether this process or another one sharing the store wrote it. Two equal
   * tokens from one store object mean those reads answer the same, so a response cache validated
   * against it on every request never serves a stale answer (docs/api.md#conditional-requests).
   * Read it before the reads it validates. Called on every read request: one cheap lookup, no scan.
   *
   * Both engines: a one-row counter (database_metadata `write_generation`) incremented inside the
   * same transactions as those writes, read here; raw ingests leave it alone.
   */
  generation(): Promise<string>
  /**
   * True for an error that says the store itself cannot be used now (connection lost, disk full,
   * I/O error, locked, read-only, out of memory…): not one client's fault, so it fails a whole day.
   * Every other error of a staging `add` is that client's.
   */
  isStoreFailure(error: unknown): boolean
  /**
   * Several processes share this store and elect one scheduler leader through this lock (one per
   * call, on its own connection). Absent: one process owns the store and always leads.
   */
  schedulerLock?(): SessionLock
  /** Closes every connection; the store is unusable afterwards. */
  close(): Promise<void>
}
