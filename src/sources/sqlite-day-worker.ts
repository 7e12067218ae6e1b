// Worker thread of the embedded store: reads one day's grouped sums client by client, off the
// service's event loop, and posts them to the batch in bounded chunks.
//
// The walk itself is walkDayByClient (sqlite-sql.ts); clients are posted as they complete.
// Flow control: the worker posts a chunk only when the reader granted a credit, so a slow reader
// bounds how much waits in memory.
import { parentPort, workerData } from 'node:worker_threads'
import { openSqliteReader } from '../db/sqlite/reader.js'
import { walkDayByClient, type GroupSumsTuple } from './sqlite-sql.js'

export interface DayWorkerData {
  path: string
  startMs: number
  endMs: number
  /** Int32Array over it: [0] chunks the reader will take now. */
  credits: SharedArrayBuffer
  /** A chunk is posted once it holds this many rows (or the day ends). */
  chunkRows: number
}

export type ClientChunkEntry = { client_org_id: string; rows: GroupSumsTuple[] } | { client_org_id: string; error: string }

export type DayWorkerMessage =
  | { type: 'clients'; clients: ClientChunkEntry[] }
  | { type: 'done' }
  | { type: 'error'; message: string }

function run(data: DayWorkerData, post: (m: DayWorkerMessage) => void): void {
  const credits = new Int32Array(data.credits)
  const takeCredit = () => {
    for (;;) {
      const available = Atomics.load(credits, 0)
      if (available > 0) {
        if (Atomics.compareExchange(credits, 0, available, available - 1) === available) return
      } else {
        Atomics.wait(credits, 0, available, 1_000)
      }
    }
  }
  const conn = openSqliteReader(data.path)
  try {
    let chunk: ClientChunkEntry[] = []
    let chunkRows = 0
    const flush = () => {
      takeCredit()
      post({ type: 'clients', clients: chunk })
      chunk = []
      chunkRows = 0
    }
    walkDayByClient(
      conn,
      data,
      (client, rows) => {
        chunk.push({ client_org_id: client, rows })
        chunkRows += rows.length
        if (chunkRows >= data.chunkRows) flush()
      },
      (client, error) => chunk.push({ client_org_id: client, error }),
    )
    if (chunk.length > 0) flush()
    post({ type: 'done' })
  } finally {
    conn.close()
  }
}

if (parentPort) {
  const port = parentPort
  try {
    run(workerData as DayWorkerData, (m) => port.postMessage(m))
  } catch (e) {
    port.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) } satisfies DayWorkerMessage)
  }
}
