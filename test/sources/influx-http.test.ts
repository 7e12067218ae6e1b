// The HTTP transport of the InfluxQL source and the shared InfluxDB helpers (node:http with
// keep-alive), against real node:http servers on 127.0.0.1 that stop by themselves.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { RawStoreUnavailableError } from '../../src/errors.js'
import {
  detectInfluxVersion,
  nodeHttpRequest,
  requestSignal,
  writeUsagePoints,
  type HttpAnswer,
} from '../../src/sources/influx-http.js'
import { createInfluxQLSource } from '../../src/sources/influxql.js'
import { usagePointLine } from '../../src/sources/line-protocol.js'
import { rawEvent } from '../helpers/events.js'
import { freePort } from '../helpers/ports.js'

interface TestServer {
  url: string
  /** Every connection the server accepted, in order. */
  sockets: Socket[]
}

async function startServer(t: Test, handler: (req: IncomingMessage, res: ServerResponse, socketIndex: number) => void): Promise<TestServer> {
  const sockets: Socket[] = []
  const server = createServer((req, res) => handler(req, res, sockets.indexOf(req.socket)))
  server.on('connection', (socket) => sockets.push(socket))
  // The client's idle connections close on their own timer; the server must not close them first.
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sockets }
}

const get = (url: string, signal = requestSignal(5_000)) => nodeHttpRequest(url, { headers: {}, signal })

async function readAll(answer: HttpAnswer): Promise<Buffer[]> {
  const pieces: Buffer[] = []
  for await (const piece of answer.body!) pieces.push(Buffer.from(piece))
  return pieces
}

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref())])
}

t.test('status, headers and a small body; the connection is kept for the next request', async (t) => {
  const server = await startServer(t, (req, res) => {
    res.setHeader('X-Influxdb-Version', '1.6.7~rc0')
    res.setHeader('Set-Cookie', ['a=1', 'b=2'])
    res.statusCode = req.url === '/teapot' ? 418 : 200
    res.end(req.url === '/teapot' ? 'short and stout' : 'zażółć')
  })
  const answer = await get(`${server.url}/teapot`)
  t.equal(answer.status, 418)
  t.equal(answer.ok, false)
  t.equal(answer.header('x-influxdb-version'), '1.6.7~rc0')
  t.equal(answer.header('X-InfluxDB-Version'), '1.6.7~rc0', 'header names in any case')
  t.equal(answer.header('set-cookie'), 'a=1, b=2', 'repeated headers joined')
  t.equal(answer.header('x-not-there'), null)
  t.equal(await answer.text(), 'short and stout')

  const second = await get(`${server.url}/`)
  t.equal(second.status, 200)
  t.equal(second.ok, true)
  t.equal(await second.text(), 'zażółć', 'UTF-8 decoded')
  t.equal(server.sockets.length, 1, 'the second request went over the first one’s connection')

  const noBody = await startServer(t, (_req, res) => {
    res.statusCode = 204
    res.end()
  })
  const ping = await get(`${noBody.url}/ping`)
  t.equal(ping.status, 204)
  t.equal(ping.body, null, 'a 204 has no body')
  await ping.discard()
  await get(`${noBody.url}/ping`).then((a) => a.discard())
  t.equal(noBody.sockets.length, 1, 'a discarded 204 gives its connection back')
})

t.test('a body is streamed as it arrives, in several pieces', async (t) => {
  let answerStream: ServerResponse | undefined
  const server = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"first":1}\n')
    answerStream = res
  })
  const answer = await get(`${server.url}/query`)
  const pieces: string[] = []
  // The server writes each next piece only once the previous one came out of the iteration: the
  // body is read while the server is still answering, never buffered to its end first.
  for await (const piece of answer.body!) {
    pieces.push(Buffer.from(piece).toString('utf8'))
    if (pieces.length < 3) answerStream!.write(`{"next":${pieces.length}}\n`)
    else answerStream!.end()
  }
  t.strictSame(pieces, ['{"first":1}\n', '{"next":1}\n', '{"next":2}\n'])
})

t.test('an abort stops a request waiting for its answer, and one whose body is being read', async (t) => {
  let serverSaw: ServerResponse | undefined
  const server = await startServer(t, (req, res) => {
    if (req.url === '/silent') return // never answers
    res.writeHead(200)
    res.write('first piece')
    serverSaw = res
  })

  const timedOut = await get(`${server.url}/silent`, requestSignal(150)).then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  t.equal(timedOut?.name, 'TimeoutError', 'the timeout is the reason')
  t.match(timedOut?.message, /timeout/)

  const controller = new AbortController()
  const answer = await get(`${server.url}/stream`, controller.signal)
  const seen: string[] = []
  const reading = (async () => {
    for await (const piece of answer.body!) {
      seen.push(Buffer.from(piece).toString('utf8'))
      controller.abort()
    }
  })()
  await t.rejects(reading, { name: 'AbortError' }, 'the body being read ends with the abort')
  t.strictSame(seen, ['first piece'])
  await within(5_000, 'the server sees its connection closed', once(serverSaw!, 'close'))
  t.ok(serverSaw!.writableFinished === false, 'the server never finished: the client closed the connection')

  const already = new AbortController()
  already.abort()
  await t.rejects(get(`${server.url}/stream`, already.signal), { name: 'AbortError' }, 'an aborted signal sends nothing')
})

t.test('a body cut short is an error, even when it is read later', async (t) => {
  const server = await startServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' })
    res.write('{"results":[')
    setTimeout(() => res.socket?.destroy(), 20)
  })
  const answer = await get(`${server.url}/query`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  await t.rejects(readAll(answer), /aborted/)
  const again = await get(`${server.url}/query`)
  await t.rejects(again.text(), /aborted/)
})

t.test('connection refused: the error names the cause; /ping names the redacted URL', async (t) => {
  const port = await freePort()
  const refused = await get(`http://127.0.0.1:${port}/ping`).then(
    () => undefined,
    (e: unknown) => e as NodeJS.ErrnoException,
  )
  t.equal(refused?.code, 'ECONNREFUSED')
  t.match(refused?.message, /ECONNREFUSED 127\.0\.0\.1/)
  await t.rejects(detectInfluxVersion(`http://127.0.0.1:${port}/base/`), {
    message: new RegExp(`^http://127\\.0\\.0\\.1:${port}/base/ping did not answer \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)$`),
  })
  const withCredentials = await detectInfluxVersion(`http://admin:s3cret@127.0.0.1:${port}/`).then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  t.match(withCredentials?.message, /^http:\/\/\[redacted\]@127\.0\.0\.1:\d+\/ping did not answer \(a URL that includes credentials is refused/)
  t.notMatch(withCredentials?.message, /s3cret/)
})

t.test('a write: the POST body arrives byte-exact, with its length and auth', async (t) => {
  const received: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; body: Buffer }> = []
  const server = await startServer(t, async (req, res) => {
    const parts: Buffer[] = []
    for await (const part of req) parts.push(part as Buffer)
    received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(parts) })
    res.statusCode = received.length === 1 ? 204 : 400
    res.end(received.length === 1 ? undefined : '{"error":"partial write: field type conflict"}')
  })
  const events = [
    rawEvent({ request_id: 'r-1', client_org_id: 'zażółć gęślą', model: 'm 🚀', occurred_at_ms: Date.UTC(2026, 10, 20, 10) }),
    rawEvent({ request_id: 'r-2', client_org_id: 'acme', external_user: 'a,b=c', occurred_at_ms: Date.UTC(2026, 10, 20, 11) }),
  ]
  const target = {
    url: server.url,
    auth: { kind: 'basic', username: 'u', password: 'pä' } as const,
    api: { kind: 'v1', database: 'usage' } as const,
    measurement: 'usage_tracking',
    timeoutMs: 5_000,
  }
  t.strictSame(await writeUsagePoints(target, events), { accepted: 2, duplicates: 0 })
  const expected = Buffer.from(events.map((e) => usagePointLine('usage_tracking', e)).join('\n'), 'utf8')
  const [write] = received
  t.equal(write!.method, 'POST')
  t.equal(write!.url, '/write?db=usage&precision=ns')
  t.ok(write!.body.equals(expected), 'the bytes sent are the lines, UTF-8 encoded')
  t.equal(write!.headers['content-length'], String(expected.length))
  t.equal(write!.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(write!.headers.authorization, `Basic ${Buffer.from('u:pä').toString('base64')}`)

  const refused = await writeUsagePoints(target, events.slice(0, 1)).then(
    () => undefined,
    (e: unknown) => e as Error,
  )
  t.ok(refused instanceof RawStoreUnavailableError)
  t.match(refused?.message, /InfluxDB refused the write \(HTTP 400\)/)
  t.match((refused?.cause as Error).message, /HTTP 400: \{"error":"partial write: field type conflict"\}/, 'InfluxDB’s answer kept for the log')
  t.equal(server.sockets.length, 1, 'both writes on one kept-alive connection')
})

t.test('a GET on a kept connection the server dropped is sent again; a POST is not', async (t) => {
  const requests: string[] = []
  const server = await startServer(t, (req, res, socketIndex) => {
    requests.push(`${req.method} ${req.url} #${socketIndex}`)
    // The server drops each connection at its second request, as one closing an idle connection
    // at the moment it is reused.
    if (requests.filter((r) => r.endsWith(`#${socketIndex}`)).length === 2) {
      req.socket.destroy()
      return
    }
    res.statusCode = req.method === 'POST' ? 204 : 200
    res.end(req.method === 'POST' ? undefined : 'ok')
  })
  t.equal(await (await get(`${server.url}/a`)).text(), 'ok')
  t.equal(await (await get(`${server.url}/b`)).text(), 'ok', 'sent again on a new connection')
  t.strictSame(requests, ['GET /a #0', 'GET /b #0', 'GET /b #1'])
  const error = await nodeHttpRequest(`${server.url}/write`, { method: 'POST', headers: {}, body: 'x', signal: requestSignal(5_000) }).then(
    () => undefined,
    (e: unknown) => e as NodeJS.ErrnoException,
  )
  t.equal(error?.code, 'ECONNRESET', 'a write is never sent twice by the transport')
  t.strictSame(requests.slice(3), ['POST /write #1'])
})

t.test('InfluxQL: a query left early lets go of its answer; the next query works', async (t) => {
  const series = (i: number) => ({
    name: 'usage_tracking',
    tags: { client_org_id: `c${i}`, external_user: 'u', model: 'm' },
    columns: ['time', 'input_tokens', 'output_tokens', 'total_tokens', 'cost_usd', 'records'],
    values: [[0, i, 1, i + 1, 0.5, 1]],
  })
  const closed: string[] = []
  const headers: IncomingMessage['headers'][] = []
  const server = await startServer(t, (req, res) => {
    const statement = new URL(req.url!, 'http://x').searchParams.get('q')!
    headers.push(req.headers)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.on('close', () => closed.push(`${statement}${res.writableFinished ? '' : ' (cut)'}`))
    if (statement === 'LONG') {
      // A long answer the client will not read to its end: a chunk now, the rest never.
      res.write(`${JSON.stringify({ results: [{ statement_id: 0, series: [series(1)], partial: true }] })}\n`)
      return
    }
    res.end(`${JSON.stringify({ results: [{ statement_id: 0, series: [series(1), series(2)] }] })}\n`)
  })
  const source = createInfluxQLSource({
    url: server.url,
    database: 'usage',
    measurement: 'usage_tracking',
    auth: { kind: 'none' },
    writeApi: { kind: 'v1' },
    timeoutMs: 60_000,
  })
  const seen: string[] = []
  for await (const s of source.query('LONG')) {
    seen.push(s.tags!.client_org_id!)
    break
  }
  t.strictSame(seen, ['c1'])
  await within(5_000, 'the left answer is closed', (async () => {
    while (!closed.includes('LONG (cut)')) await new Promise((resolve) => setTimeout(resolve, 10))
  })())

  const early = source.query('SHORT')
  t.equal((await early.next()).value?.tags?.client_org_id, 'c1')
  await early.return(undefined)
  // Five in flight, each left at once or read to the end, as per-client aggregation does.
  const all = await within(10_000, 'the next queries', Promise.all(
    Array.from({ length: 5 }, async () => {
      const names: string[] = []
      for await (const s of source.query('SHORT')) names.push(s.tags!.client_org_id!)
      return names
    }),
  ))
  t.strictSame(all, Array.from({ length: 5 }, () => ['c1', 'c2']))
  // Without an injected fetch the source speaks node:http: fetch would have sent its user-agent and asked for gzip.
  t.match(headers[0], { accept: 'application/json', 'user-agent': undefined, 'accept-encoding': undefined })
})

t.test('idle kept-alive connections do not keep the process alive', async (t) => {
  const server = await startServer(t, (_req, res) => res.end('ok'))
  const module = fileURLToPath(new URL('../../src/sources/influx-http.ts', import.meta.url))
  // The child makes one request and lets its connection go idle in the pool; it must exit at once,
  // not when the pool's idle timeout (4 s) closes the connection.
  const script = `
    const { nodeHttpRequest, requestSignal } = await import(${JSON.stringify(module)})
    const answer = await nodeHttpRequest(${JSON.stringify(`${server.url}/`)}, { headers: {}, signal: requestSignal(5_000) })
    await answer.text()
    const done = performance.now()
    process.on('exit', () => console.log(String(Math.round(performance.now() - done))))
  `
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 }, (error, stdout) =>
      error ? reject(error) : resolve({ stdout }),
    ),
  )
  t.equal(server.sockets.length, 1)
  t.ok(Number(stdout.trim()) < 2_000, `exited ${stdout.trim()} ms after its last answer`)
})
