// Day archives of raw usage: gzip NDJSON, one file per local day, deterministic bytes (fixed field
// order, rows ordered by request_id, gzip header without a timestamp), checksum and row count in
// `raw_archives`. Restoring loads a day back idempotently through the request_id primary key.
import type Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { finished, pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import { getArchive, markRestored } from '../db/archives.js'
import type { Db } from '../db/open.js'

/** The stored field order of an archive line; also the column list of the queries below. */
export const ARCHIVE_FIELDS = [
  'request_id',
  'client_org_id',
  'model',
  'external_user',
  'input_tokens',
  'output_tokens',
  'total_tokens',
  'cost_nano_usd',
  'occurred_at',
  'received_at',
] as const

export type ArchiveLine = { [K in (typeof ARCHIVE_FIELDS)[number]]: K extends 'request_id' | 'client_org_id' | 'model' | 'external_user' ? string : number }

const COLUMNS = ARCHIVE_FIELDS.join(', ')
const ROWS_PER_WRITE = 5_000
const ROWS_PER_RESTORE_TRANSACTION = 5_000

export function archiveFileName(date: string): string {
  return `usage-${date}.ndjson.gz`
}

/** The rows of a day that an archive (and the deletion after it) covers. */
export interface DaySelection {
  date: string
  startMs: number
  endMs: number
  /** Only rows received at or before this instant: later arrivals are not yet summarised. */
  maxReceivedAt: number
}

const SELECT_DAY_SQL = `SELECT ${COLUMNS} FROM usage_events
  WHERE occurred_at >= @startMs AND occurred_at < @endMs AND received_at <= @maxReceivedAt
  ORDER BY request_id`

function toLine(row: ArchiveLine): string {
  // Built field by field so the order never depends on how a row object was made.
  const ordered: Record<string, unknown> = {}
  for (const f of ARCHIVE_FIELDS) ordered[f] = row[f]
  return JSON.stringify(ordered) + '\n'
}

/**
 * Rows of the day in request_id order. `conn` should be a connection nobody else uses while this
 * runs (a read-only one on the file): the iterator stays open across awaits, and better-sqlite3
 * refuses other statements on a connection with an open iterator.
 */
function* dayRows(conn: Database.Database, day: DaySelection): Generator<ArchiveLine> {
  const params = { startMs: day.startMs, endMs: day.endMs, maxReceivedAt: day.maxReceivedAt }
  yield* conn.prepare(SELECT_DAY_SQL).iterate(params) as IterableIterator<ArchiveLine>
}

async function* lineChunks(rows: Iterable<ArchiveLine>): AsyncGenerator<string> {
  let chunk: string[] = []
  for (const row of rows) {
    chunk.push(toLine(row))
    if (chunk.length === ROWS_PER_WRITE) {
      yield chunk.join('')
      chunk = []
    }
  }
  if (chunk.length > 0) yield chunk.join('')
}

export interface ArchiveFileFacts {
  rows: number
  bytes: number
  sha256: string
}

/** Checksum, size and line count of an archive file, read back from disk. */
export async function inspectArchiveFile(path: string): Promise<ArchiveFileFacts> {
  const hash = createHash('sha256')
  const raw = createReadStream(path)
  raw.on('data', (b) => hash.update(b))
  let rows = 0
  const lines = createInterface({ input: raw.pipe(createGunzip()), crlfDelay: Infinity })
  for await (const line of lines) if (line !== '') rows += 1
  await finished(raw)
  const { size } = await stat(path)
  return { rows, bytes: size, sha256: hash.digest('hex') }
}

/**
 * Writes the day's rows to `usage-D.ndjson.gz` in `dir` through a temporary file and a rename, so a
 * crash never leaves a half-written file under the final name. Answers the facts read back from the
 * renamed file (not the ones intended): the caller compares its row count with the database.
 */
export async function writeDayArchive(conn: Database.Database, dir: string, day: DaySelection): Promise<ArchiveFileFacts & { fileName: string }> {
  await mkdir(dir, { recursive: true })
  const fileName = archiveFileName(day.date)
  const finalPath = join(dir, fileName)
  const tempPath = join(dir, `.${fileName}.${process.pid}.tmp`)
  try {
    const out = createWriteStream(tempPath)
    await pipeline(Readable.from(lineChunks(dayRows(conn, day))), createGzip({ level: 6 }), out)
    await rename(tempPath, finalPath)
  } catch (e) {
    await rm(tempPath, { force: true })
    throw new Error(`cannot write archive ${finalPath}: ${(e as Error).message}`, { cause: e })
  }
  return { fileName, ...(await inspectArchiveFile(finalPath)) }
}

/** Parsed lines of an archive file, in file order. */
export async function* readArchiveLines(path: string): AsyncGenerator<ArchiveLine> {
  const lines = createInterface({ input: createReadStream(path).pipe(createGunzip()), crlfDelay: Infinity })
  let n = 0
  for await (const line of lines) {
    if (line === '') continue
    n += 1
    const row = JSON.parse(line) as Record<string, unknown>
    for (const f of ARCHIVE_FIELDS) {
      const v = row[f]
      const text = f === 'request_id' || f === 'client_org_id' || f === 'model' || f === 'external_user'
      if (text ? typeof v !== 'string' : !Number.isSafeInteger(v)) throw new Error(`${path} line ${n}: field ${f} missing or malformed`)
    }
    yield row as ArchiveLine
  }
}

/** UTF-8 byte order, as SQLite's BINARY collation sorts text (JS `<` compares UTF-16 units). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/**
 * Compares an existing archive with the day's rows in the database by a merge over both sorted
 * sequences, without holding either in memory. `onlyInDb` rows would be lost if the database rows
 * were deleted on the strength of this archive; `onlyInFile` rows would be lost if the archive
 * were rewritten from the database. Rows of voided records (`isVoided`) are meant to be gone from
 * the database: they are neither lost nor missing.
 */
export async function compareArchiveWithDb(
  conn: Database.Database,
  path: string,
  day: DaySelection,
  isVoided: (requestId: string) => boolean = () => false,
): Promise<{ onlyInDb: number; onlyInFile: number }> {
  const db = dayRows(conn, day)
  let dbNext = db.next()
  let onlyInDb = 0
  let onlyInFile = 0
  for await (const fileRow of readArchiveLines(path)) {
    while (!dbNext.done && compareKeys(dbNext.value.request_id, fileRow.request_id) < 0) {
      onlyInDb += 1
      dbNext = db.next()
    }
    if (!dbNext.done && dbNext.value.request_id === fileRow.request_id) dbNext = db.next()
    else if (!isVoided(fileRow.request_id)) onlyInFile += 1
  }
  while (!dbNext.done) {
    onlyInDb += 1
    dbNext = db.next()
  }
  return { onlyInDb, onlyInFile }
}

export interface RestoreDeps {
  db: Db
  /** RAW_ARCHIVE_DIR. */
  archiveDir: string
  clock: Clock
  log?: Logger
}

export interface RestoreResult {
  date: string
  file: string
  rows: number
  inserted: number
  /** Rows of records voided since the archive was written: not loaded. */
  voided: number
  /** Rows already present (a second restore, or rows never deleted). */
  duplicates: number
}

export class ArchiveError extends Error {
  override name = 'ArchiveError'
}

/**
 * Loads a day's archive back into `usage_events`: the file's checksum is checked against the one
 * recorded when it was written, then rows are inserted in bounded transactions with
 * `ON CONFLICT(request_id) DO NOTHING`, so a repeated or partial restore is harmless. Afterwards the
 * day is no longer marked purged and can be rerun (`POST /batch/run {date}`).
 *
 * CLI: `usage-batch archive restore --date D` → `restoreArchive({ db, archiveDir, clock, log }, D)`.
 */
export async function restoreArchive(deps: RestoreDeps, date: string): Promise<RestoreResult> {
  const record = getArchive(deps.db, date)
  if (!record?.file_name || !record.sha256) throw new ArchiveError(`no archive recorded for ${date}`)
  const path = join(deps.archiveDir, record.file_name)
  let facts: ArchiveFileFacts
  try {
    facts = await inspectArchiveFile(path)
  } catch (e) {
    throw new ArchiveError(`cannot read archive ${path}: ${(e as Error).message}`, { cause: e })
  }
  if (facts.sha256 !== record.sha256) {
    throw new ArchiveError(`archive ${path} does not match its recorded checksum (recorded ${record.sha256}, file ${facts.sha256})`)
  }
  if (facts.rows !== record.row_count) {
    throw new ArchiveError(`archive ${path} holds ${facts.rows} rows, ${record.row_count} recorded`)
  }

  // A record voided after the day was archived stays voided: its row in the file is skipped.
  const insert = deps.db.$client.prepare(
    `INSERT INTO usage_events (${COLUMNS}) SELECT ${ARCHIVE_FIELDS.map((f) => '@' + f).join(', ')}
     WHERE NOT EXISTS (SELECT 1 FROM usage_event_voids WHERE request_id = @request_id)
     ON CONFLICT (request_id) DO NOTHING`,
  )
  const isVoided = deps.db.$client.prepare('SELECT EXISTS (SELECT 1 FROM usage_event_voids WHERE request_id = ?)').pluck()
  const insertChunk = deps.db.$client.transaction((rows: ArchiveLine[]) => {
    let inserted = 0
    for (const row of rows) {
      if (insert.run(row).changes === 1) inserted += 1
      else if (isVoided.get(row.request_id) === 1) voided += 1
    }
    return inserted
  })
  let rows = 0
  let voided = 0
  let inserted = 0
  let chunk: ArchiveLine[] = []
  for await (const row of readArchiveLines(path)) {
    chunk.push(row)
    rows += 1
    if (chunk.length === ROWS_PER_RESTORE_TRANSACTION) {
      inserted += insertChunk(chunk)
      chunk = []
    }
  }
  if (chunk.length > 0) inserted += insertChunk(chunk)
  markRestored(deps.db, date, new Date(deps.clock.now()).toISOString())
  deps.log?.info({ day: date, file: path, rows, inserted, voided }, 'raw archive restored')
  return { date, file: path, rows, inserted, voided, duplicates: rows - inserted - voided }
}
