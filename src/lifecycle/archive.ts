// Day archives of raw usage: gzip NDJSON, one file per local day, deterministic bytes (fixed field
// order, rows ordered by request_id, gzip header without a timestamp), checksum and row count in
// `raw_archives`. Restoring loads a day back idempotently through the request_id primary key.
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
import { USAGE_EVENT_COLUMNS } from '../db/schema.js'
import type { ArchiveLine, DaySelection, Store } from '../db/store.js'

/** The field order of an archive line: usage_events' columns. */
export const ARCHIVE_FIELDS = USAGE_EVENT_COLUMNS
const TEXT_FIELDS: ReadonlySet<string> = new Set(['request_id', 'client_org_id', 'model', 'external_user'])

const ROWS_PER_WRITE = 5_000
const ROWS_PER_RESTORE_TRANSACTION = 5_000

export function archiveFileName(date: string): string {
  return `usage-${date}.ndjson.gz`
}

function toLine(row: ArchiveLine): string {
  // Built field by field so the order never depends on how a row object was made.
  const ordered: Record<string, unknown> = {}
  for (const f of ARCHIVE_FIELDS) ordered[f] = row[f]
  return JSON.stringify(ordered) + '\n'
}

async function* lineChunks(rows: AsyncIterable<ArchiveLine>): AsyncGenerator<string> {
  let chunk: string[] = []
  for await (const row of rows) {
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
export async function writeDayArchive(store: Store, dir: string, day: DaySelection): Promise<ArchiveFileFacts & { fileName: string }> {
  await mkdir(dir, { recursive: true })
  const fileName = archiveFileName(day.date)
  const finalPath = join(dir, fileName)
  const tempPath = join(dir, `.${fileName}.${process.pid}.tmp`)
  try {
    const out = createWriteStream(tempPath)
    await pipeline(Readable.from(lineChunks(store.rawEvents.exportDay(day))), createGzip({ level: 6 }), out)
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
      if (TEXT_FIELDS.has(f) ? typeof v !== 'string' : !Number.isSafeInteger(v)) throw new Error(`${path} line ${n}: field ${f} missing or malformed`)
    }
    yield row as ArchiveLine
  }
}

/** UTF-8 byte order, as the store sorts text (JS `<` compares UTF-16 units). */
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
  store: Store,
  path: string,
  day: DaySelection,
  isVoided: (requestId: string) => boolean = () => false,
): Promise<{ onlyInDb: number; onlyInFile: number }> {
  const db = store.rawEvents.exportDay(day)[Symbol.asyncIterator]()
  try {
    let dbNext = await db.next()
    let onlyInDb = 0
    let onlyInFile = 0
    for await (const fileRow of readArchiveLines(path)) {
      while (!dbNext.done && compareKeys(dbNext.value.request_id, fileRow.request_id) < 0) {
        onlyInDb += 1
        dbNext = await db.next()
      }
      if (!dbNext.done && dbNext.value.request_id === fileRow.request_id) dbNext = await db.next()
      else if (!isVoided(fileRow.request_id)) onlyInFile += 1
    }
    while (!dbNext.done) {
      onlyInDb += 1
      dbNext = await db.next()
    }
    return { onlyInDb, onlyInFile }
  } finally {
    // Left early (an unreadable file): the export lets its connection go.
    await db.return?.()
  }
}

export interface RestoreDeps {
  store: Store
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
 * recorded when it was written, then rows are inserted in bounded transactions, a row already
 * stored being a duplicate, so a repeated or partial restore is harmless. Afterwards the day is no
 * longer marked purged and can be rerun (`POST /batch/run {date}`).
 */
export async function restoreArchive(deps: RestoreDeps, date: string): Promise<RestoreResult> {
  const record = await deps.store.archives.get(date)
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

  // A record voided after the day was archived stays voided: the store skips its row.
  let rows = 0
  let voided = 0
  let inserted = 0
  const load = async (chunk: ArchiveLine[]) => {
    const loaded = await deps.store.rawEvents.restore(chunk)
    inserted += loaded.inserted
    voided += loaded.voided
  }
  let chunk: ArchiveLine[] = []
  for await (const row of readArchiveLines(path)) {
    chunk.push(row)
    rows += 1
    if (chunk.length === ROWS_PER_RESTORE_TRANSACTION) {
      await load(chunk)
      chunk = []
    }
  }
  if (chunk.length > 0) await load(chunk)
  await deps.store.archives.markRestored(date, new Date(deps.clock.now()).toISOString())
  deps.log?.info({ day: date, file: path, rows, inserted, voided }, 'raw archive restored')
  return { date, file: path, rows, inserted, voided, duplicates: rows - inserted - voided }
}
