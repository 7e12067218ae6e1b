// How the PostgreSQL store talks to the pool: parameterised statements only, 64-bit integers and
// integral NUMERICs converted exactly at this edge (never through a global type parser), and
// transactions on one checked-out connection that is discarded when it broke.
import pg from 'pg'
import type { Nano } from '../../money.js'
import { GENERATION_KEY } from '../store.js'

const INT8_OID = 20
const NUMERIC_OID = 1700

/**
 * A BIGINT or an integral NUMERIC (a SUM over BIGINT) as the store's rows carry it: a number while
 * it is a safe integer, a bigint beyond (money.ts Nano). pg hands both over as decimal text, so
 * nothing passes through a double on the way.
 */
export function exactInteger(text: string): Nano {
  const n = Number(text)
  if (Number.isSafeInteger(n)) return n
  if (!/^-?\d+$/.test(text)) throw new RangeError(`not an integer: ${text}`)
  return BigInt(text)
}

/** The type parsers of every statement of the store (per query, never installed globally). */
const EXACT_TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return exactInteger
    return pg.types.getTypeParser(oid, format)
  },
} as pg.CustomTypesConfig

/** A count (tokens, records, ids, epoch ms): the store never holds one beyond 2^53. */
export function count(value: unknown): number {
  if (typeof value === 'number') return value
  if (typeof value === 'bigint') throw new RangeError(`a count of ${value} is beyond what this service keeps exactly`)
  if (value === null || value === undefined) return 0
  return count(exactInteger(String(value)))
}

export type Queryable = pg.Pool | pg.PoolClient | pg.Client

/** Rows as objects, integers converted exactly. */
export async function rows<R extends object>(on: Queryable, text: string, values: unknown[] = []): Promise<R[]> {
  const result = await on.query<R & pg.QueryResultRow>({ text, values, types: EXACT_TYPES })
  return result.rows
}

/** Rows as arrays of values in select-list order, integers converted exactly. */
export async function arrays(on: Queryable, text: string, values: unknown[] = []): Promise<unknown[][]> {
  const result = await on.query<unknown[]>({ text, values, types: EXACT_TYPES, rowMode: 'array' })
  return result.rows
}

/** The first row, or undefined. */
export async function one<R extends object>(on: Queryable, text: string, values: unknown[] = []): Promise<R | undefined> {
  return (await rows<R>(on, text, values))[0]
}

/** Rows changed by a write. */
export async function changes(on: Queryable, text: string, values: unknown[] = []): Promise<number> {
  const result = await on.query({ text, values })
  return result.rowCount ?? 0
}

/**
 * Runs `work` in one transaction on a connection of its own. A failure rolls back; a connection
 * that broke on the way is destroyed rather than returned to the pool.
 */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query(begin)
    try {
      const result = await work(client)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e))
      throw error
    }
  } catch (error) {
    broken ??= isConnectionLevel(error) ? (error as Error) : undefined
    throw error
  } finally {
    client.release(broken)
  }
}

/** An error after which the connection cannot be trusted: anything but the server refusing one statement. */
export function isConnectionLevel(error: unknown): boolean {
  return !(error instanceof pg.DatabaseError)
}

/** A text parameter PostgreSQL cannot hold (NUL): it can match no stored value. */
export function holdsNul(value: string): boolean {
  return value.includes('\u0000')
}

/**
 * The store's write generation (Store.generation): one row of database_metadata, incremented inside
 * every transaction or statement that changes what a summary read answers (a day replaced, a rate,
 * a markup, a void). Not a sequence: nextval is visible before its transaction commits, so a reader
 * could cache the old answer under the new number. A row lock orders writers; each takes it last.
 */
export const BUMP_GENERATION = `INSERT INTO database_metadata (key, value) VALUES ('${GENERATION_KEY}', '1')
  ON CONFLICT (key) DO UPDATE SET value = (database_metadata.value::bigint + 1)::text`
