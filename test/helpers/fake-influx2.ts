// A local stand-in for InfluxDB 2 speaking just what the Flux source uses: GET /ping,
// POST /api/v2/write (line protocol) and POST /api/v2/query answering annotated CSV laid out as
// InfluxDB 2 lays it out. Every Flux text received is checked with InfluxData's own checker
// first; an invalid one is answered 400 and recorded, so that the test fails.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { formatDecimal, parseDecimal } from '../../src/money.js'
import { isValidFlux } from './flux-check.js'

type FieldValue = { kind: 'int'; value: bigint } | { kind: 'float'; value: number } | { kind: 'string'; value: string } | { kind: 'bool'; value: boolean }

export interface StoredPoint {
  measurement: string
  tags: Record<string, string>
  fields: Record<string, FieldValue>
  timeNs: bigint
}

export interface FakeInflux2 {
  url: string
  token: string
  org: string
  bucket: string
  points: StoredPoint[]
  /** Every Flux query received, in order. */
  queries: string[]
  /** Queries the checker refused. A test passes only when this stays empty. */
  invalidQueries: string[]
  /** The next query answers HTTP 200, one good table, then an error table (as InfluxDB does mid-stream). */
  failNextQueryMidStream: boolean
  close(): Promise<void>
}

const PRECISION_NS: Record<string, bigint> = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n }

/** Line protocol, as InfluxDB 2 reads it (escapes in measurement, tags and string fields). */
export function parseLineProtocol(body: string, precision: string): StoredPoint[] {
  const factor = PRECISION_NS[precision]
  if (factor === undefined) throw new Error(`bad precision ${precision}`)
  const points: StoredPoint[] = []
  for (const rawLine of body.split('\n')) {
    const line = rawLine.trimEnd()
    if (!line || line.startsWith('#')) continue
    let i = 0
    // A backslash escapes ',', '=' and ' ' (measurements: ',' and ' '); before anything else it is literal.
    const readUntil = (stops: string, escapable = ',= '): string => {
      let out = ''
      while (i < line.length && !stops.includes(line[i]!)) {
        if (line[i] === '\\' && i + 1 < line.length && escapable.includes(line[i + 1]!)) {
          out += line[i + 1]
          i += 2
        } else {
          out += line[i]
          i++
        }
      }
      return out
    }
    const measurement = readUntil(', ', ', ')
    const tags: Record<string, string> = {}
    while (line[i] === ',') {
      i++
      const key = readUntil('=')
      i++
      tags[key] = readUntil(', ')
    }
    if (line[i] !== ' ') throw new Error(`bad line: ${line}`)
    i++
    const fields: Record<string, FieldValue> = {}
    for (;;) {
      const key = readUntil('=')
      i++
      if (line[i] === '"') {
        i++
        let s = ''
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) i++
          s += line[i]
          i++
        }
        i++
        fields[key] = { kind: 'string', value: s }
      } else {
        const v = readUntil(', ')
        if (/^-?\d+i$/.test(v)) fields[key] = { kind: 'int', value: BigInt(v.slice(0, -1)) }
        else if (/^(t|true|f|false)$/i.test(v)) fields[key] = { kind: 'bool', value: /^t/i.test(v) }
        else if (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) fields[key] = { kind: 'float', value: Number(v) }
        else throw new Error(`bad field value ${v} in: ${line}`)
      }
      if (line[i] === ',') {
        i++
        continue
      }
      break
    }
    let timeNs: bigint
    if (line[i] === ' ') timeNs = BigInt(line.slice(i + 1).trim()) * factor
    else throw new Error(`this fake wants explicit timestamps: ${line}`)
    points.push({ measurement, tags, fields, timeNs })
  }
  return points
}

/** Flux string literal → its value (the escapes the `flux` template writes). */
function unquoteFlux(literal: string): string {
  return literal.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? c)
}

const FLUX_STRING = '"((?:[^"\\\\]|\\\\.)*)"'

interface QueryShape {
  bucket: string
  startNs: bigint
  stopNs: bigint
  measurement: string
  clientOrgId?: string
}

/** What this fake can answer: the Flux source's day query, and nothing else. */
function readQueryShape(query: string): QueryShape | undefined {
  const bucket = new RegExp(`from\\(bucket: ${FLUX_STRING}\\)`).exec(query)
  const range = new RegExp(`range\\(start: time\\(v: ${FLUX_STRING}\\), stop: time\\(v: ${FLUX_STRING}\\)\\)`).exec(query)
  const measurement = new RegExp(`r\\._measurement == ${FLUX_STRING}\\)`).exec(query)
  const client = new RegExp(`r\\.client_org_id == ${FLUX_STRING}\\)`).exec(query)
  const grouped = query.includes('group(columns: ["client_org_id", "external_user", "model"])')
  const pivoted = query.includes('pivot(rowKey: ["client_org_id", "external_user", "model"], columnKey: ["_field"], valueColumn: "_value")')
  if (!bucket || !range || !measurement || !grouped || !pivoted) return undefined
  const ns = (iso: string) => BigInt(Date.parse(unquoteFlux(iso))) * 1_000_000n
  return {
    bucket: unquoteFlux(bucket[1]!),
    startNs: ns(range[1]!),
    stopNs: ns(range[2]!),
    measurement: unquoteFlux(measurement[1]!),
    clientOrgId: client ? unquoteFlux(client[1]!) : undefined,
  }
}

interface LookupShape {
  bucket: string
  measurement: string
  requestIds: string[]
}

/** The Flux source's point lookup (voids in InfluxDB-first mode): request_id fields in a set, over all time. */
function readLookupShape(query: string): LookupShape | undefined {
  const bucket = new RegExp(`from\\(bucket: ${FLUX_STRING}\\)`).exec(query)
  const measurement = new RegExp(`r\\._measurement == ${FLUX_STRING} and r\\._field == "request_id"\\)`).exec(query)
  const set = /contains\(value: r\._value, set: \[((?:"(?:[^"\\]|\\.)*",?)*)\]\)/.exec(query)
  if (!bucket || !measurement || !set || !query.includes('keep(columns: ["_time", "_value", "client_org_id", "external_user", "model"])')) return undefined
  const requestIds = [...set[1]!.matchAll(new RegExp(FLUX_STRING, 'g'))].map((m) => unquoteFlux(m[1]!))
  return { bucket: unquoteFlux(bucket[1]!), measurement: unquoteFlux(measurement[1]!), requestIds }
}

/** Go's time.RFC3339Nano, as InfluxDB writes _time: trailing zeros of the fraction dropped. */
export function rfc3339Nano(ns: bigint): string {
  const ms = ns / 1_000_000n
  const seconds = new Date(Number((ms / 1000n) * 1000n)).toISOString().slice(0, 19)
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '')
  return `${seconds}${fraction ? `.${fraction}` : ''}Z`
}

function answerLookup(fake: FakeInflux2, shape: LookupShape): string {
  const crlf = '\r\n'
  let out =
    `#datatype,string,long,dateTime:RFC3339,string,string,string,string${crlf}` +
    `#group,false,false,false,false,false,false,false${crlf}` +
    `#default,points,,,,,,${crlf}` +
    `,result,table,_time,_value,client_org_id,external_user,model${crlf}`
  for (const p of fake.points) {
    const id = p.fields.request_id
    if (p.measurement !== shape.measurement || id?.kind !== 'string' || !shape.requestIds.includes(id.value)) continue
    const tags = [p.tags.client_org_id, p.tags.external_user, p.tags.model].map((v) => csvCell(v ?? ''))
    out += `,,0,${rfc3339Nano(p.timeNs)},${csvCell(id.value)},${tags.join(',')}${crlf}`
  }
  return out + crlf
}

const SUM_FIELDS = ['cost_usd', 'input_tokens', 'output_tokens', 'total_tokens'] as const
const CSV_COLUMNS = ['result', 'table', 'client_org_id', 'external_user', 'model', ...SUM_FIELDS, 'records']

/** Go's strconv.FormatFloat(v, 'f', -1, 64), as InfluxDB's CSV encoder writes floats. */
function goFloat(v: number): string {
  return formatDecimal(parseDecimal(v))
}

function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v
}

function answerQuery(fake: FakeInflux2, shape: QueryShape, midStreamError: boolean): string {
  const groups = new Map<string, { tags: [string, string | undefined, string]; sums: Record<string, number | bigint>; count: number }>()
  for (const p of fake.points) {
    if (p.measurement !== shape.measurement || p.timeNs < shape.startNs || p.timeNs >= shape.stopNs) continue
    if (shape.clientOrgId !== undefined && p.tags.client_org_id !== shape.clientOrgId) continue
    const tags: [string, string | undefined, string] = [p.tags.client_org_id ?? '', p.tags.external_user, p.tags.model ?? '']
    const key = JSON.stringify(tags)
    let g = groups.get(key)
    if (!g) {
      g = { tags, sums: {}, count: 0 }
      groups.set(key, g)
    }
    for (const f of SUM_FIELDS) {
      const v = p.fields[f]
      if (!v) continue
      if (v.kind === 'int') g.sums[f] = ((g.sums[f] as bigint | undefined) ?? 0n) + v.value
      // Floats are added as doubles in arrival order, noise included, as the server does.
      else if (v.kind === 'float') g.sums[f] = ((g.sums[f] as number | undefined) ?? 0) + v.value
    }
    if (p.fields.input_tokens) g.count++
  }
  const crlf = '\r\n'
  let out =
    `#datatype,string,long,string,string,string,double,double,double,double,double${crlf}` +
    `#group,false,false,true,true,true,false,false,false,false,false${crlf}` +
    `#default,usage,,,,,,,,,${crlf}` +
    `,${CSV_COLUMNS.join(',')}${crlf}`
  let table = 0
  for (const g of [...groups.values()].sort((a, b) => (JSON.stringify(a.tags) < JSON.stringify(b.tags) ? -1 : 1))) {
    const cell = (f: string) => {
      const v = g.sums[f]
      return v === undefined ? '' : goFloat(Number(v))
    }
    const cells = ['', String(table), ...g.tags.map((t) => csvCell(t ?? '')), ...SUM_FIELDS.map(cell), goFloat(g.count)]
    out += `,${cells.join(',')}${crlf}`
    table++
    if (midStreamError) {
      out +=
        `${crlf}#datatype,string,string${crlf}#group,true,true${crlf}#default,,${crlf},error,reference${crlf}` +
        `,"panic: runtime error: out of memory",${crlf}`
      break
    }
  }
  return out + crlf
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startFakeInflux2(t: { teardown(fn: () => unknown): void }): Promise<FakeInflux2> {
  const fake: FakeInflux2 = {
    url: '',
    token: 'fake-token',
    org: 'billing',
    bucket: 'usage',
    points: [],
    queries: [],
    invalidQueries: [],
    failNextQueryMidStream: false,
    close: async () => {},
  }
  const json = (res: ServerResponse, status: number, payload: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
    res.end(JSON.stringify(payload))
  }
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake')
      if (req.method === 'GET' && url.pathname === '/ping') {
        res.writeHead(204, { 'x-influxdb-version': 'v2.7.11', 'x-influxdb-build': 'OSS' })
        return res.end()
      }
      if (req.headers.authorization !== `Token ${fake.token}`) return json(res, 401, { code: 'unauthorized', message: 'unauthorized access' })
      if (req.method === 'POST' && url.pathname === '/api/v2/write') {
        if (url.searchParams.get('bucket') !== fake.bucket || url.searchParams.get('org') !== fake.org) {
          return json(res, 404, { code: 'not found', message: `bucket "${url.searchParams.get('bucket')}" not found` })
        }
        try {
          for (const p of parseLineProtocol(await body(req), url.searchParams.get('precision') ?? 'ns')) {
            // A point is measurement + tag set + time: a second write of it overwrites the first.
            const id = JSON.stringify([p.measurement, Object.entries(p.tags).sort(), String(p.timeNs)])
            const at = fake.points.findIndex((q) => JSON.stringify([q.measurement, Object.entries(q.tags).sort(), String(q.timeNs)]) === id)
            if (at >= 0) fake.points[at] = { ...p, fields: { ...fake.points[at]!.fields, ...p.fields } }
            else fake.points.push(p)
          }
        } catch (e) {
          return json(res, 400, { code: 'invalid', message: (e as Error).message })
        }
        res.writeHead(204)
        return res.end()
      }
      if (req.method === 'POST' && url.pathname === '/api/v2/query') {
        const request = JSON.parse(await body(req)) as { query: string; type?: string; dialect?: { annotations?: string[] } }
        fake.queries.push(request.query)
        if (!(await isValidFlux(request.query))) {
          fake.invalidQueries.push(request.query)
          return json(res, 400, { code: 'invalid', message: 'compilation failed: the Flux checker refused the query' })
        }
        const lookup = readLookupShape(request.query)
        if (lookup && url.searchParams.get('org') === fake.org && request.type === 'flux') {
          if (lookup.bucket !== fake.bucket) return json(res, 404, { code: 'not found', message: `could not find bucket "${lookup.bucket}"` })
          res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' })
          return res.end(answerLookup(fake, lookup))
        }
        const shape = readQueryShape(request.query)
        if (!shape || url.searchParams.get('org') !== fake.org || request.type !== 'flux') {
          return json(res, 400, { code: 'invalid', message: 'fake-influx2: not the query shape this fake answers' })
        }
        if (shape.bucket !== fake.bucket) return json(res, 404, { code: 'not found', message: `failed to initialize execute state: could not find bucket "${shape.bucket}"` })
        const midStream = fake.failNextQueryMidStream
        fake.failNextQueryMidStream = false
        res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' })
        return res.end(answerQuery(fake, shape, midStream))
      }
      json(res, 404, { code: 'not found', message: 'path not found' })
    })().catch((e: unknown) => {
      res.writeHead(500)
      res.end(String(e))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  let closed = false
  fake.close = () =>
    new Promise<void>((resolve) => {
      if (closed) return resolve()
      closed = true
      server.closeAllConnections()
      server.close(() => resolve())
    })
  t.teardown(fake.close)
  return fake
}
