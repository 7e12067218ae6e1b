// Worker thread of the ingest writer (ingest-writer.ts): stores ingests on a connection of its own,
// so the service's event loop reads the next request while this one is written.
import { parentPort, workerData } from 'node:worker_threads'
import { decodeEvents } from '../../event-columns.js'
import { createIngest } from './ingest.js'
import { openSqliteWriter } from './reader.js'
import type { WriterData, WriterReply, WriterRequest } from './ingest-writer.js'

if (parentPort) {
  const port = parentPort
  const { path, busyTimeoutMs } = workerData as WriterData
  const conn = openSqliteWriter(path, busyTimeoutMs)
  const ingest = createIngest(conn)
  port.on('message', ({ id, columns, receivedAtMs }: WriterRequest) => {
    let reply: WriterReply
    try {
      reply = { id, outcome: ingest(decodeEvents(columns), receivedAtMs) }
    } catch (e) {
      const error = e as Error & { code?: unknown }
      reply = { id, error: { name: error.name, message: error.message, code: typeof error.code === 'string' ? error.code : undefined } }
    }
    port.postMessage(reply)
  })
  port.on('close', () => conn.close())
}
