// The run ledger (`influxdb_batch_runs`) in PostgreSQL. Single-flight is the partial unique index
// influxdb_batch_runs_one_running_uq, shared by every replica. Claims also take a transaction-level
// advisory lock, so run ids become visible in the order they were handed out: "every id below a
// visible one is settled or visible too" then holds across replicas, as it does in SQLite, and the
// ledger's id cursors (listing, the metrics' settled id) stay exact.
import type pg from 'pg'
import { redactText } from '../../redact.js'
import { SUCCESS_STATUSES, type RunTrigger } from '../enums.js'
import type { BatchRunRow } from '../schema.js'
import type { ClaimInput, ClaimResult, ClosedRunTotals, ClosedTotalsRead, ListRunsFilter, RunOutcome, RunRepository } from '../store.js'
import { ADVISORY_LOCK_CLASS, ADVISORY_LOCKS } from './advisory-locks.js'
import { count, one, rows, transaction } from './sql.js'

/** SUCCESS_STATUSES as an SQL list; the values are constants, never input. */
const SUCCESS_SQL = `(${SUCCESS_STATUSES.map((s) => `'${s}'`).join(', ')})`
const ABANDONED_MESSAGE = 'the process running it stopped before it finished'
/** A claim that lost to a run which closed before it could be read is retried this often. */
const CLAIM_ATTEMPTS = 5

export function createPostgresRuns(pool: pg.Pool): RunRepository {
  const get = async (id: number) => one<BatchRunRow>(pool, 'SELECT * FROM influxdb_batch_runs WHERE id = $1', [id])
  const running = () => rows<BatchRunRow>(pool, "SELECT * FROM influxdb_batch_runs WHERE status = 'running' ORDER BY id")

  async function claim(input: ClaimInput): Promise<ClaimResult> {
    for (let attempt = 1; ; attempt++) {
      const result = await transaction(pool, async (client) => {
        await client.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCKS.runClaims])
        const inserted = await one<BatchRunRow>(
          client,
          `INSERT INTO influxdb_batch_runs (processing_date, trigger, status, started_at, heartbeat_at, data_source, owner)
           VALUES ($1, $2, 'running', $3, $3, $4, $5)
           ON CONFLICT (processing_date) WHERE status = 'running' DO NOTHING
           RETURNING *`,
          [input.date, input.trigger, input.startedAt, input.dataSource, input.owner],
        )
        if (inserted) return { run: inserted, claimed: true }
        const current = await one<BatchRunRow>(client, "SELECT * FROM influxdb_batch_runs WHERE processing_date = $1 AND status = 'running'", [input.date])
        return current ? { run: current, claimed: false } : undefined
      })
      if (result) return result
      // The running run closed between the conflict and the read: the date is free again.
      if (attempt >= CLAIM_ATTEMPTS) throw new Error(`run for ${input.date} neither inserted nor found running`)
    }
  }

  async function finish(id: number, outcome: RunOutcome): Promise<BatchRunRow> {
    const { warnings, client_errors, error_message, ...rest } = outcome
    const set: Record<string, unknown> = { ...rest }
    if (error_message !== undefined) set.error_message = error_message === null ? null : redactText(error_message)
    if (warnings) set.warnings = JSON.stringify(warnings.map(redactText))
    if (client_errors) set.client_errors = JSON.stringify(client_errors.map((e) => ({ ...e, error: redactText(e.error) })))
    const names = Object.keys(set).filter((k) => set[k] !== undefined)
    for (const name of names) if (!RUN_OUTCOME_COLUMNS.has(name)) throw new Error(`not a run outcome column: ${name}`)
    const updated = await one<BatchRunRow>(
      pool,
      `UPDATE influxdb_batch_runs SET ${names.map((n, i) => `${n} = $${i + 2}`).join(', ')}
       WHERE id = $1 AND status = 'running' RETURNING *`,
      [id, ...names.map((n) => set[n])],
    )
    return updated ?? (await get(id))!
  }

  async function list(filter: ListRunsFilter): Promise<BatchRunRow[]> {
    const conditions: string[] = []
    const values: unknown[] = []
    const add = (condition: string, value: unknown) => {
      values.push(value)
      conditions.push(condition.replace('?', `$${values.length}`))
    }
    if (filter.from) add('processing_date >= ?', filter.from)
    if (filter.to) add('processing_date <= ?', filter.to)
    if (filter.status) add('status = ?', filter.status)
    if (filter.beforeId !== undefined) add('id < ?', filter.beforeId)
    values.push(filter.limit)
    return rows<BatchRunRow>(
      pool,
      `SELECT * FROM influxdb_batch_runs ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${values.length}`,
      values,
    )
  }

  /**
   * The runs judged dead are closed only if they are still running with the heartbeat that was
   * judged: a run whose owner beat (or closed it) since the read is left alone. A zombie owner that
   * wakes up later cannot commit its day: the commit locks the run row and refuses a run that is no
   * longer running (staging.ts).
   */
  async function abandonDead(isOwnerAlive: (run: BatchRunRow) => boolean, finishedAt: string): Promise<BatchRunRow[]> {
    const dead = (await running()).filter((r) => !isOwnerAlive(r))
    if (dead.length === 0) return []
    return rows<BatchRunRow>(
      pool,
      `UPDATE influxdb_batch_runs r SET status = 'abandoned', finished_at = $3, error_message = $4
       FROM unnest($1::bigint[], $2::text[]) AS d(id, heartbeat_at)
       WHERE r.id = d.id AND r.status = 'running' AND r.heartbeat_at IS NOT DISTINCT FROM d.heartbeat_at
       RETURNING r.*`,
      [dead.map((r) => r.id), dead.map((r) => r.heartbeat_at), finishedAt, ABANDONED_MESSAGE],
    ).then((closed) => closed.sort((a, b) => a.id - b.id))
  }

  async function dateSet(text: string, dates: readonly string[], extra: unknown[] = []): Promise<Set<string>> {
    if (dates.length === 0) return new Set()
    return new Set((await rows<{ d: string }>(pool, text, [[...dates], ...extra])).map((r) => r.d))
  }

  async function closedRunTotals(on: pg.PoolClient, boundsMs: readonly number[], after: number, through: number | null): Promise<ClosedRunTotals[]> {
    const buckets = boundsMs.map((_, i) => `, count(*) FILTER (WHERE duration_ms <= $${i + 3}) AS b${i}`).join('')
    const found = await rows<Record<string, unknown>>(
      on,
      `SELECT status, trigger, count(*) AS runs, coalesce(sum(records_processed), 0) AS records,
              coalesce(sum(summaries_written), 0) AS summaries, coalesce(sum(data_corrections), 0) AS corrections,
              count(*) FILTER (WHERE client_errors <> '[]') AS client_error_runs,
              count(duration_ms) AS timed, coalesce(sum(duration_ms), 0) AS duration_sum${buckets}
         FROM influxdb_batch_runs
        WHERE status <> 'running' AND id > $1 AND ($2::bigint IS NULL OR id <= $2)
        GROUP BY status, trigger`,
      [after, through, ...boundsMs],
    )
    return found.map((r) => ({
      status: r.status as ClosedRunTotals['status'],
      trigger: r.trigger as RunTrigger,
      runs: count(r.runs),
      records: count(r.records),
      summaries: count(r.summaries),
      corrections: count(r.corrections),
      runsWithClientErrors: count(r.client_error_runs),
      timedRuns: count(r.timed),
      durationMsSum: count(r.duration_sum),
      runsAtOrBelowMs: boundsMs.map((_, i) => count(r[`b${i}`])),
    }))
  }

  return {
    claim,
    finish,
    get,
    running,
    list,

    async heartbeat(id, at) {
      await pool.query("UPDATE influxdb_batch_runs SET heartbeat_at = $2 WHERE id = $1 AND status = 'running'", [id, at])
    },

    abandonDead,

    async hasSuccessBeside(date, id, side) {
      const found = await one(
        pool,
        `SELECT 1 FROM influxdb_batch_runs WHERE processing_date = $1 AND status IN ${SUCCESS_SQL} AND id ${side === 'before' ? '<' : '>'} $2 LIMIT 1`,
        [date, id],
      )
      return found !== undefined
    },

    async lastSuccessDate() {
      const r = await one<{ d: string | null }>(pool, `SELECT max(processing_date) AS d FROM influxdb_batch_runs WHERE status IN ${SUCCESS_SQL}`)
      return r?.d ?? null
    },

    async firstProcessingDate() {
      const r = await one<{ d: string | null }>(pool, 'SELECT min(processing_date) AS d FROM influxdb_batch_runs')
      return r?.d ?? null
    },

    datesWithSuccess: (dates) =>
      dateSet(`SELECT DISTINCT processing_date AS d FROM influxdb_batch_runs WHERE processing_date = ANY($1::text[]) AND status IN ${SUCCESS_SQL}`, dates),

    datesInProgress: (dates, freshSince) =>
      dateSet(
        `SELECT DISTINCT processing_date AS d FROM influxdb_batch_runs
          WHERE processing_date = ANY($1::text[]) AND status = 'running' AND heartbeat_at >= $2`,
        dates,
        [freshSince],
      ),

    datesWithPlnMissing: (dates) =>
      dateSet(
        `SELECT usage_date AS d FROM client_daily_usage WHERE usage_date = ANY($1::text[]) AND markup_cost_nano_pln IS NULL
         UNION
         SELECT r.processing_date AS d FROM influxdb_batch_runs r
          WHERE r.processing_date = ANY($1::text[]) AND r.exchange_rate_usd_pln IS NULL
            AND r.id = (SELECT max(id) FROM influxdb_batch_runs l WHERE l.processing_date = r.processing_date AND l.status IN ${SUCCESS_SQL})`,
        dates,
      ),

    lastClosed: (triggers) =>
      one<BatchRunRow>(pool, "SELECT * FROM influxdb_batch_runs WHERE trigger = ANY($1::text[]) AND status <> 'running' ORDER BY id DESC LIMIT 1", [
        [...triggers],
      ]),

    unresolvedFailures: (from, to) =>
      rows<BatchRunRow>(
        pool,
        `SELECT r.* FROM influxdb_batch_runs r
          WHERE r.processing_date BETWEEN $1 AND $2 AND r.status = 'failed'
            AND r.id = (SELECT max(id) FROM influxdb_batch_runs x WHERE x.processing_date = r.processing_date AND x.status <> 'running')
          ORDER BY r.processing_date`,
        [from, to],
      ),

    async successStartTimes(date) {
      return (await rows<{ started_at: string }>(pool, `SELECT started_at FROM influxdb_batch_runs WHERE processing_date = $1 AND status IN ${SUCCESS_SQL}`, [date])).map(
        (r) => r.started_at,
      )
    },

    // One snapshot (REPEATABLE READ) for the settled id and both sums.
    closedTotals: (boundsMs, knownSettledThroughId) =>
      transaction(
        pool,
        async (client): Promise<ClosedTotalsRead> => {
          const settled = await one<{ id: number }>(
            client,
            `SELECT coalesce((SELECT min(id) - 1 FROM influxdb_batch_runs WHERE status = 'running'),
                             (SELECT max(id) FROM influxdb_batch_runs), 0) AS id`,
          )
          const settledThroughId = count(settled!.id)
          const newlySettled =
            settledThroughId > knownSettledThroughId ? await closedRunTotals(client, boundsMs, knownSettledThroughId, settledThroughId) : []
          const unsettled = await closedRunTotals(client, boundsMs, Math.max(settledThroughId, knownSettledThroughId), null)
          return { settledThroughId, newlySettled, unsettled }
        },
        'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
      ),
  }
}

/** The columns a run's outcome may set (RunOutcome's fields). */
const RUN_OUTCOME_COLUMNS = new Set([
  'status',
  'finished_at',
  'duration_ms',
  'clients_processed',
  'records_processed',
  'summaries_written',
  'data_corrections',
  'exchange_rate_usd_pln',
  'warnings',
  'error_message',
  'client_errors',
])
