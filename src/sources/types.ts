// The raw usage store seen by the batch and the API. Raw usage is aggregated only here, in
// src/sources; the store's raw-events repository (src/db) keeps the embedded store's rows themselves
// (ingestion, voids, retention, archives), and the embedded sources write through it.
import type { DayWindow } from '../clock.js'
import type { DataSource } from '../db/enums.js'
import type { StoreHealth, VoidResult } from '../db/store.js'
import type { RawMeasures } from '../measures.js'
import type { UsageEvent, VoidedEvent } from '../usage-event.js'

/**
 * Sums of raw records of one (client, user, model) group over a window: tokens, the number of
 * records (`total_requests`) and the raw cost in nano-USD (`raw_cost_nano_usd`), rounded once
 * (half-even) when the store sums floats.
 */
export type AggregateRow = RawMeasures & {
  client_org_id: string
  external_user: string
  model: string
}

/**
 * Every aggregate row of one client over a window, or why that client's sums could not be read
 * (e.g. a sum past what the store's 64-bit integers hold): that client fails alone.
 */
export type ClientAggregate = { client_org_id: string; rows: AggregateRow[] } | { client_org_id: string; error: string }

export interface IngestResult {
  accepted: number
  duplicates: number
}

/**
 * How to remove records from an external store by hand (InfluxDB-first mode): one delete per point,
 * in the store's own language, with every identifier and literal escaped.
 */
export interface ExternalDeletes {
  dialect: 'influxql' | 'flux'
  deletes: Array<{
    request_id: string
    /** The point's timestamp, RFC 3339 with nanoseconds. */
    time: string
    /** InfluxQL: the DELETE statement. Flux: the delete predicate (with start and stop). */
    statement?: string
    predicate?: string
    start?: string
    stop?: string
  }>
  not_found: string[]
}

/** A raw store answers (up) or not (down), with the details /health shows: the store's own shape. */
export type SourceHealth = StoreHealth

export interface AggregateOptions {
  /** Restrict to one client (per-client querying, /today). */
  clientOrgId?: string
  signal?: AbortSignal
}

export interface UsageSource {
  /** Stored in summary rows and runs as `data_source`. */
  readonly dataSource: DataSource
  /** Human name of the dialect: sqlite | influxql | flux. */
  readonly dialect: string
  /**
   * Grouped sums over [window.startMs, window.endMs), by (client_org_id, external_user, model).
   * Streams; order unspecified. A query failure throws — never an empty result.
   */
  aggregate(window: Pick<DayWindow, 'startMs' | 'endMs'>, options?: AggregateOptions): AsyncIterable<AggregateRow>
  /**
   * Stores events idempotently by request_id; resolves only once the store acknowledged them.
   * `duplicates` counts events whose request_id was already stored (or repeated in the batch).
   * InfluxDB cannot tell: there a retry overwrites its own point (same tags and timestamp, see
   * line-protocol.ts) and `duplicates` counts only repeats within the batch.
   */
  ingest(events: UsageEvent[]): Promise<IngestResult>
  /**
   * The same sums as `aggregate` over the whole window, delivered client by client: each client
   * once, with all its rows, in one consistent view of the store. Lets the batch build and stage a
   * client as soon as it is complete instead of holding the day. Offered where it is as fast as
   * the grouped query (SQLite, read in a worker thread).
   */
  aggregateClients?(window: Pick<DayWindow, 'startMs' | 'endMs'>, signal?: AbortSignal): AsyncIterable<ClientAggregate>
  /**
   * Client ids that may have records in the window (a superset is fine), for per-client
   * aggregation. Only stores where querying client by client pays off offer it (InfluxQL).
   */
  listClients?(window: Pick<DayWindow, 'startMs' | 'endMs'>, signal?: AbortSignal): Promise<string[]>
  /**
   * Voids records by request_id (embedded store only): each found record moves to the audit table
   * with the reason and time, in one transaction. Stores that offer it also refuse a voided
   * request_id on ingest (409).
   */
  voidEvents?(requestIds: string[], reason: string, nowMs: number): Promise<VoidResult>
  /** Voids of records whose instant lies in [startMs, endMs), oldest record first. */
  listVoids?(window: Pick<DayWindow, 'startMs' | 'endMs'>): Promise<VoidedEvent[]>
  /**
   * Stores that cannot void (InfluxDB): finds the points of these request ids and says how to delete
   * them by hand. Scans the measurement over all time: request ids carry no date.
   */
  externalDeletes?(requestIds: string[], signal?: AbortSignal): Promise<ExternalDeletes>
  /**
   * Resolves when the store can take queries; rejects with a 503-coded error saying why when it
   * cannot yet (InfluxDB whose dialect is still being detected). Absent: always ready.
   */
  ready?(): Promise<void>
  /** A cheap liveness check of the store. */
  check(): Promise<SourceHealth>
  close(): Promise<void>
}
