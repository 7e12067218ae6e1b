// Large ingests stored off the event loop (bench/README.md#ingestion-where-the-time-goes).
//
// Storing 5,000 records is about 60 ms of synchronous SQLite work. On the store's connection it holds
// the event loop, so the next request's body is neither received nor read until it is done. The
// ingest writer stores large ingests on a connection of its own in a worker thread
// (ingest-writer-worker.ts): the same transaction (ingest.ts), while the event loop reads, validates
// and normalises the next request on the other core.
//
// Two connections write the file now. Every transaction that reads before it writes takes the
// write lock at BEGIN (IMMEDIATE), so one committed by the other connection in between cannot fail
// it; otherwise SQLite queues them (busy timeout). Raw records change no summary, so the writer's
// commits leave the store's write generation (generation.ts) alone and cached answers stay valid.
//
// A worker that fails or exits fails the ingests it was given (503: send again; records already
// stored count as duplicates) and is started again for the next one.
import type { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { RawStoreUnavailableError } from '../../errors.js'
import { encodeEvents, type EventColumns } from '../../event-columns.js'
import type { UsageEvent } from '../../usage-event.js'
import { startWorker } from '../../worker-thread.js'
import type { IngestOutcome } from '../store.js'

/** Ingests of at least this many records go to the writer; smaller ones are stored on the event loop, where they take a few milliseconds. */
export const WRITER_MIN_RECORDS = 1_000
/** Off the event loop a wait for the write lock blocks nothing, so it may outlast a long batch commit. */
export const WRITER_BUSY_TIMEOUT_MS = 30_000

export interface WriterData {
  path: string
  busyTimeoutMs: number
}
export interface WriterRequest {
  id: number
  columns: EventColumns
  receivedAtMs: number
}
export type WriterReply = { id: number; outcome: IngestOutcome } | { id: number; error: { name: string; message: string; code?: string } }

export interface IngestWriter {
  ingest(events: readonly UsageEvent[], receivedAtMs: number): Promise<IngestOutcome>
  /** Waits for the ingests given, then stops the worker. */
  close(): Promise<void>
}

interface Waiting {
  resolve: (outcome: IngestOutcome) => void
  reject: (error: Error) => void
}

export function createIngestWriter(path: string, log?: Logger, start: (data: WriterData) => Worker = (data) => startWorker(import.meta.url, 'ingest-writer-worker', { workerData: data })): IngestWriter {
  let worker: Worker | undefined
  let nextId = 0
  const waiting = new Map<number, Waiting>()
  let drained: (() => void) | undefined
  let closed = false

  function settled(id: number): Waiting | undefined {
    const w = waiting.get(id)
    waiting.delete(id)
    if (waiting.size === 0) {
      // An idle worker does not keep the process alive.
      worker?.unref()
      drained?.()
    }
    return w
  }

  function spawn(): Worker {
    const w = start({ path, busyTimeoutMs: WRITER_BUSY_TIMEOUT_MS })
    w.on('message', (reply: WriterReply) => {
      const entry = settled(reply.id)
      if (!entry) return
      if ('outcome' in reply) return entry.resolve(reply.outcome)
      // The SQLite error as the store's own connection would throw it: same name, message and code.
      entry.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name, code: reply.error.code }))
    })
    w.on('error', (e) => log?.error({ err: e }, 'ingest writer failed'))
    w.on('exit', (code) => {
      if (worker === w) worker = undefined
      if (waiting.size === 0) return
      log?.error({ code, waiting: waiting.size }, 'ingest writer stopped with ingests in hand; they are refused (503) and may be sent again')
      for (const id of [...waiting.keys()]) {
        settled(id)?.reject(
          new RawStoreUnavailableError('the write of this request did not complete; send it again (records already stored count as duplicates)'),
        )
      }
    })
    return w
  }

  return {
    ingest(events, receivedAtMs) {
      // As the store's own connection once closed: nothing is written after close().
      if (closed) return Promise.reject(new Error('the store is closed'))
      const columns = encodeEvents(events)
      worker ??= spawn()
      if (waiting.size === 0) worker.ref()
      const id = nextId++
      const outcome = new Promise<IngestOutcome>((resolve, reject) => waiting.set(id, { resolve, reject }))
      worker.postMessage({ id, columns, receivedAtMs } satisfies WriterRequest, [columns.lengths.buffer, columns.numbers.buffer, columns.costs.buffer])
      return outcome
    },
    async close() {
      closed = true
      if (waiting.size > 0) await new Promise<void>((resolve) => (drained = resolve))
      const w = worker
      worker = undefined
      if (w) await w.terminate()
    },
  }
}
