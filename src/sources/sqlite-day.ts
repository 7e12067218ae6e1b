// Reading one day of the embedded store in a worker thread (sqlite-day-worker.ts), client by
// client. The grouped scan of a large day takes seconds of synchronous SQLite work; in the worker
// it neither blocks the service's event loop (probes, reads and ingestion go on) nor waits for the
// batch, which builds and stages each client while the next ones are read.
import { startWorker } from '../worker-thread.js'
import type { AggregateRow, ClientAggregate } from './types.js'
import type Database from 'better-sqlite3'
import { openSqliteReader } from '../db/sqlite/reader.js'
import type { ClientChunkEntry, DayWorkerData, DayWorkerMessage } from './sqlite-day-worker.js'
import { readDayByClient, type GroupSumsTuple } from './sqlite-sql.js'

/** Chunks posted but not yet taken by the batch, at most. */
const CREDITS = 4
const CHUNK_ROWS = 2_000

export interface ReadDayOptions {
  path: string
  startMs: number
  endMs: number
  signal?: AbortSignal
}

function toAggregate(client: string, r: GroupSumsTuple): AggregateRow {
  return {
    client_org_id: client,
    external_user: r[0],
    model: r[1],
    input_tokens: r[2],
    output_tokens: r[3],
    total_tokens: r[4],
    total_requests: r[6],
    raw_cost_nano_usd: r[5],
  }
}

function toClientAggregate(entry: ClientChunkEntry): ClientAggregate {
  if ('error' in entry) return entry
  return { client_org_id: entry.client_org_id, rows: entry.rows.map((r) => toAggregate(entry.client_org_id, r)) }
}

/** Reads the window on `conn` into an array. */
function readDayOn(conn: Database.Database, window: { startMs: number; endMs: number }): ClientAggregate[] {
  const clients: ClientAggregate[] = []
  readDayByClient(
    conn,
    window,
    (client, rows) => clients.push(toClientAggregate({ client_org_id: client, rows })),
    (client, error) => clients.push({ client_org_id: client, error }),
  )
  return clients
}

/**
 * A small day on the calling thread, with a connection of its own (one snapshot, no statement
 * shared with other readers): starting a worker would cost more than the read.
 */
export async function* readDayInThread(options: ReadDayOptions): AsyncGenerator<ClientAggregate> {
  options.signal?.throwIfAborted()
  const conn = openSqliteReader(options.path)
  let clients: ClientAggregate[]
  try {
    clients = readDayOn(conn, options)
  } finally {
    conn.close()
  }
  for (const client of clients) {
    options.signal?.throwIfAborted()
    yield client
  }
}

/** Yields each client of the window once, with all its grouped rows; stops the worker when left early. */
export async function* readDayInWorker(options: ReadDayOptions): AsyncGenerator<ClientAggregate> {
  options.signal?.throwIfAborted()
  const credits = new SharedArrayBuffer(4)
  const counter = new Int32Array(credits)
  counter[0] = CREDITS
  const data: DayWorkerData = {
    path: options.path,
    startMs: options.startMs,
    endMs: options.endMs,
    credits,
    chunkRows: CHUNK_ROWS,
  }
  const worker = startWorker(import.meta.url, 'sqlite-day-worker', { workerData: data })
  const queue: DayWorkerMessage[] = []
  let failure: unknown
  let exited = false
  let wake: (() => void) | undefined
  const notify = () => {
    wake?.()
    wake = undefined
  }
  worker.on('message', (m: DayWorkerMessage) => {
    queue.push(m)
    notify()
  })
  worker.on('error', (e) => {
    failure ??= new Error(`SQLite day reader failed: ${e.message}`, { cause: e })
    notify()
  })
  worker.on('exit', () => {
    exited = true
    notify()
  })
  const onAbort = () => {
    failure ??= options.signal!.reason
    notify()
  }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for (;;) {
      while (queue.length === 0 && failure === undefined && !exited) await new Promise<void>((resolve) => (wake = resolve))
      if (failure !== undefined) throw failure
      const message = queue.shift()
      if (!message) throw new Error('SQLite day reader stopped before reading the whole day')
      if (message.type === 'error') throw new Error(`SQLite day reader failed: ${message.message}`)
      if (message.type === 'done') return
      for (const c of message.clients) yield toClientAggregate(c)
      // The chunk is consumed: the worker may post another.
      Atomics.add(counter, 0, 1)
      Atomics.notify(counter, 0)
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
    await worker.terminate()
  }
}
