// The run ledger (`influxdb_batch_runs`). Opening a run is also the single-flight guard: a partial
// UNIQUE index allows one `running` row per date, across every process sharing the file.
import { and, desc, eq, gt, gte, inArray, lt, lte, ne, sql, type SQL } from '../drizzle.js'
import type { Db } from './open.js'
import { influxdbBatchRuns, type BatchRunRow } from '../schema.js'
import { SUCCESS_STATUSES, type RunTrigger } from '../enums.js'
import type { ClaimInput, ClaimResult, ClosedRunTotals, ClosedTotalsRead, ListRunsFilter, RunOutcome } from '../store.js'
import { redactText } from '../../redact.js'

/** SUCCESS_STATUSES as an SQL list; the values are constants, never input. */
const SUCCESS_SQL = `(${SUCCESS_STATUSES.map((s) => `'${s}'`).join(', ')})`

/** Opens a `running` run for the date, or returns the one already running. Synchronous: no await between check and insert. */
export function claimRun(db: Db, input: ClaimInput): ClaimResult {
  return db.transaction((tx) => {
    const inserted = tx
      .insert(influxdbBatchRuns)
      .values({
        processing_date: input.date,
        trigger: input.trigger,
        status: 'running',
        started_at: input.startedAt,
        heartbeat_at: input.startedAt,
        data_source: input.dataSource,
        owner: input.owner,
      })
      .onConflictDoNothing()
      .returning()
      .all()
    if (inserted[0]) return { run: inserted[0], claimed: true }
    const running = tx
      .select()
      .from(influxdbBatchRuns)
      .where(and(eq(influxdbBatchRuns.processing_date, input.date), eq(influxdbBatchRuns.status, 'running')))
      .get()
    if (!running) throw new Error(`run for ${input.date} neither inserted nor found running`)
    return { run: running, claimed: false }
  })
}

/**
 * Closes a running run; returns the closed row. Does nothing to a run no longer running. Messages
 * are stored redacted: the ledger is served by /batch/runs, and errors quote URLs (docs/operations.md#logs).
 */
export function finishRun(db: Db, id: number, outcome: RunOutcome): BatchRunRow {
  const { warnings, client_errors, error_message, ...rest } = outcome
  const updated = db
    .update(influxdbBatchRuns)
    .set({
      ...rest,
      ...(error_message !== undefined ? { error_message: error_message === null ? null : redactText(error_message) } : {}),
      ...(warnings ? { warnings: JSON.stringify(warnings.map(redactText)) } : {}),
      ...(client_errors ? { client_errors: JSON.stringify(client_errors.map((e) => ({ ...e, error: redactText(e.error) }))) } : {}),
    })
    .where(and(eq(influxdbBatchRuns.id, id), eq(influxdbBatchRuns.status, 'running')))
    .returning()
    .all()
  return updated[0] ?? getRun(db, id)!
}

export function getRun(db: Db, id: number): BatchRunRow | undefined {
  return db.select().from(influxdbBatchRuns).where(eq(influxdbBatchRuns.id, id)).get()
}

export function runningRuns(db: Db): BatchRunRow[] {
  return db.select().from(influxdbBatchRuns).where(eq(influxdbBatchRuns.status, 'running')).orderBy(influxdbBatchRuns.id).all()
}

/**
 * True when a run of the date succeeded (with or without warnings) before run `id` (was there a
 * previous result to correct?) or after it (did a rerun repair a failure?).
 */
export function hasSuccessBeside(db: Db, date: string, id: number, side: 'before' | 'after'): boolean {
  const row = db
    .select({ id: influxdbBatchRuns.id })
    .from(influxdbBatchRuns)
    .where(
      and(
        eq(influxdbBatchRuns.processing_date, date),
        inArray(influxdbBatchRuns.status, SUCCESS_STATUSES),
        side === 'before' ? lt(influxdbBatchRuns.id, id) : gt(influxdbBatchRuns.id, id),
      ),
    )
    .limit(1)
    .get()
  return row !== undefined
}

export function lastSuccessDate(db: Db): string | null {
  const row = db
    .select({ d: sql<string>`max(${influxdbBatchRuns.processing_date})` })
    .from(influxdbBatchRuns)
    .where(inArray(influxdbBatchRuns.status, SUCCESS_STATUSES))
    .get()
  return row?.d ?? null
}

/** Newest first by id; ids only grow, so an id cursor is stable under concurrent inserts. */
export function listRuns(db: Db, filter: ListRunsFilter): BatchRunRow[] {
  const conditions: SQL[] = []
  if (filter.from) conditions.push(gte(influxdbBatchRuns.processing_date, filter.from))
  if (filter.to) conditions.push(lte(influxdbBatchRuns.processing_date, filter.to))
  if (filter.status) conditions.push(eq(influxdbBatchRuns.status, filter.status))
  if (filter.beforeId !== undefined) conditions.push(lt(influxdbBatchRuns.id, filter.beforeId))
  return db
    .select()
    .from(influxdbBatchRuns)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(influxdbBatchRuns.id))
    .limit(filter.limit)
    .all()
}

/**
 * For a transaction that reads before it writes: another process's commit in between (a CLI run's
 * heartbeat) would fail a deferred transaction's upgrade to a write at once (SQLITE_BUSY_SNAPSHOT).
 */
const IMMEDIATE = { behavior: 'immediate' } as const

/**
 * Marks `running` rows whose owner is gone as `abandoned`. `isOwnerAlive` decides per run (its
 * owner and heartbeat); runs owned by a live process (another CLI run, say) are left alone. Read and
 * update are one synchronous transaction: no heartbeat can land between them.
 */
export function abandonDeadRuns(db: Db, isOwnerAlive: (run: BatchRunRow) => boolean, finishedAt: string): BatchRunRow[] {
  return db.transaction(() => {
    const dead = runningRuns(db).filter((r) => !isOwnerAlive(r))
    if (dead.length === 0) return []
    return db
      .update(influxdbBatchRuns)
      .set({ status: 'abandoned', finished_at: finishedAt, error_message: 'the process running it stopped before it finished' })
      .where(and(inArray(influxdbBatchRuns.id, dead.map((r) => r.id)), eq(influxdbBatchRuns.status, 'running')))
      .returning()
      .all()
  }, IMMEDIATE)
}

/** Dates (of those given) that have at least one successful run. */
export function datesWithSuccess(db: Db, dates: readonly string[]): Set<string> {
  if (dates.length === 0) return new Set()
  const rows = db
    .selectDistinct({ d: influxdbBatchRuns.processing_date })
    .from(influxdbBatchRuns)
    .where(and(inArray(influxdbBatchRuns.processing_date, [...dates]), inArray(influxdbBatchRuns.status, SUCCESS_STATUSES)))
    .all()
  return new Set(rows.map((r) => r.d))
}

/** Dates (of those given) with a `running` run whose heartbeat is at or after `freshSince` (ISO). */
export function datesInProgress(db: Db, dates: readonly string[], freshSince: string): Set<string> {
  if (dates.length === 0) return new Set()
  const rows = db
    .selectDistinct({ d: influxdbBatchRuns.processing_date })
    .from(influxdbBatchRuns)
    .where(
      and(
        inArray(influxdbBatchRuns.processing_date, [...dates]),
        eq(influxdbBatchRuns.status, 'running'),
        gte(influxdbBatchRuns.heartbeat_at, freshSince),
      ),
    )
    .all()
  return new Set(rows.map((r) => r.d))
}

export function touchHeartbeat(db: Db, id: number, at: string): void {
  db.update(influxdbBatchRuns)
    .set({ heartbeat_at: at })
    .where(and(eq(influxdbBatchRuns.id, id), eq(influxdbBatchRuns.status, 'running')))
    .run()
}

/**
 * Dates (of those given) whose PLN is still missing: a summary row without markup_cost_nano_pln, or
 * (for a day without usage, which has no rows) a latest successful run that found no USD/PLN rate.
 */
export function datesWithPlnMissing(db: Db, dates: readonly string[]): Set<string> {
  if (dates.length === 0) return new Set()
  const list = JSON.stringify(dates)
  const rows = db.$client
    .prepare(
      `SELECT DISTINCT usage_date AS d FROM client_daily_usage
         WHERE usage_date IN (SELECT value FROM json_each(@list)) AND markup_cost_nano_pln IS NULL
       UNION
       SELECT r.processing_date AS d FROM influxdb_batch_runs r
         WHERE r.processing_date IN (SELECT value FROM json_each(@list))
           AND r.exchange_rate_usd_pln IS NULL
           AND r.id = (SELECT max(id) FROM influxdb_batch_runs l
                       WHERE l.processing_date = r.processing_date
                         AND l.status IN ${SUCCESS_SQL})`,
    )
    .all({ list }) as Array<{ d: string }>
  return new Set(rows.map((r) => r.d))
}

/**
 * Closed runs grouped by status and trigger, with their summed figures and duration buckets, in one
 * pass over the ledger. Closed runs never reopen and their figures never change, so every sum here
 * only grows: a counter read from the database, whichever process ran the runs.
 */
function closedRunTotals(db: Db, boundsMs: readonly number[], ids: { after?: number; through?: number } = {}): ClosedRunTotals[] {
  const buckets = boundsMs.map((_, i) => `, total(duration_ms <= @b${i}) AS b${i}`).join('')
  const params = { ...Object.fromEntries(boundsMs.map((b, i) => [`b${i}`, b])), after: ids.after ?? 0, through: ids.through ?? Number.MAX_SAFE_INTEGER }
  const rows = db.$client
    .prepare(
      `SELECT status, trigger, count(*) AS runs, total(records_processed) AS records, total(summaries_written) AS summaries,
              total(data_corrections) AS corrections, total(client_errors <> '[]') AS client_error_runs,
              count(duration_ms) AS timed, total(duration_ms) AS duration_sum${buckets}
         FROM influxdb_batch_runs WHERE status <> 'running' AND id > @after AND id <= @through GROUP BY status, trigger`,
    )
    .all(params) as Array<{
    status: ClosedRunTotals['status']
    trigger: RunTrigger
    runs: number
    records: number
    summaries: number
    corrections: number
    client_error_runs: number
    timed: number
    duration_sum: number
    [bucket: `b${number}`]: number
  }>
  return rows.map((r) => ({
    status: r.status,
    trigger: r.trigger,
    runs: r.runs,
    records: r.records,
    summaries: r.summaries,
    corrections: r.corrections,
    runsWithClientErrors: r.client_error_runs,
    timedRuns: r.timed,
    durationMsSum: r.duration_sum,
    runsAtOrBelowMs: boundsMs.map((_, i) => r[`b${i}`] ?? 0),
  }))
}

/**
 * The highest id below which every run is closed: one less than the oldest running run, or the
 * newest id when none runs. Ids only grow (AUTOINCREMENT) and closed runs never change, so what lies
 * at or below it is final.
 */
function settledRunId(db: Db): number {
  // The single-flight index holds only running runs (a handful, whatever the ledger's size); left to
  // itself the planner would walk the whole table in id order looking for one.
  return db.$client
    .prepare(
      `SELECT coalesce((SELECT min(id) - 1 FROM influxdb_batch_runs INDEXED BY influxdb_batch_runs_one_running_uq WHERE status = 'running'),
                       (SELECT max(id) FROM influxdb_batch_runs), 0)`,
    )
    .pluck()
    .get() as number
}

/**
 * closedRunTotals of what settled since `knownSettledThroughId` and of what is not settled yet, with
 * the settled id, from one read transaction (one snapshot of the ledger).
 */
export function closedTotals(db: Db, boundsMs: readonly number[], knownSettledThroughId: number): ClosedTotalsRead {
  return db.$client.transaction(() => {
    const settledThroughId = settledRunId(db)
    const newlySettled =
      settledThroughId > knownSettledThroughId ? closedRunTotals(db, boundsMs, { after: knownSettledThroughId, through: settledThroughId }) : []
    const unsettled = closedRunTotals(db, boundsMs, { after: Math.max(settledThroughId, knownSettledThroughId) })
    return { settledThroughId, newlySettled, unsettled }
  })()
}

/** The newest closed run (any status but `running`) with one of the triggers. */
export function lastClosedRun(db: Db, triggers: readonly RunTrigger[]): BatchRunRow | undefined {
  return db
    .select()
    .from(influxdbBatchRuns)
    .where(and(inArray(influxdbBatchRuns.trigger, [...triggers]), ne(influxdbBatchRuns.status, 'running')))
    .orderBy(desc(influxdbBatchRuns.id))
    .limit(1)
    .get()
}

/** Dates in [from, to] whose latest closed run failed: a failure nobody has fixed by a later run. */
export function unresolvedFailures(db: Db, from: string, to: string): BatchRunRow[] {
  return db.$client
    .prepare(
      `SELECT r.* FROM influxdb_batch_runs r
       WHERE r.processing_date BETWEEN ? AND ? AND r.status = 'failed'
         AND r.id = (SELECT max(id) FROM influxdb_batch_runs x WHERE x.processing_date = r.processing_date AND x.status <> 'running')
       ORDER BY r.processing_date`,
    )
    .all(from, to) as BatchRunRow[]
}

export function firstProcessingDate(db: Db): string | null {
  return db.$client.prepare('SELECT min(processing_date) FROM influxdb_batch_runs').pluck().get() as string | null
}

export function successStartTimes(db: Db, date: string): string[] {
  return db.$client
    .prepare(`SELECT started_at FROM influxdb_batch_runs WHERE processing_date = ? AND status IN ${SUCCESS_SQL}`)
    .pluck()
    .all(date) as string[]
}
