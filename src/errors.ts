// Every error that maps to an HTTP status, in one place, each made by @fastify/error with a code
// of this service (USAGE_BATCH_…) and its status; and the one way to describe an error in a log
// line or a run's message. The error handler (plugins/errors.ts) turns them into the JSON error body
// (docs/api.md#errors): a 503 says what is unavailable in our own words, never in a dependency's.
import createError from '@fastify/error'
import { redactText } from './redact.js'
import type { EventConflict } from './usage-event.js'

/** The prefix of every error code of this service. */
export const ERROR_CODE_PREFIX = 'USAGE_BATCH_'

/** The caller's request is wrong in a way the schema cannot say (a range backwards, too long…). */
export const BadRequestError = createError<'USAGE_BATCH_BAD_REQUEST', 400, [string]>('USAGE_BATCH_BAD_REQUEST', '%s', 400)
export const UnauthorizedError = createError('USAGE_BATCH_UNAUTHORIZED', 'missing or unknown bearer token', 401)
export const ForbiddenError = createError<'USAGE_BATCH_FORBIDDEN', 403, [string]>('USAGE_BATCH_FORBIDDEN', 'this token may not %s', 403)
export const NotFoundError = createError<'USAGE_BATCH_NOT_FOUND', 404, [string]>('USAGE_BATCH_NOT_FOUND', '%s', 404)
/** Something with that key exists already (a pricing entry for the date). */
export const ConflictError = createError<'USAGE_BATCH_CONFLICT', 409, [string]>('USAGE_BATCH_CONFLICT', '%s', 409)

/** Ingest: records that break the rules; carries `itemErrors` (index, field, message). */
export const InvalidEventsError = createError<'USAGE_BATCH_INVALID_EVENTS', 400, [string]>('USAGE_BATCH_INVALID_EVENTS', '%s', 400)
/** Void: request ids or a reason that cannot be used; carries `itemErrors`. */
export const InvalidVoidError = createError<'USAGE_BATCH_INVALID_VOID', 400, [string]>('USAGE_BATCH_INVALID_VOID', '%s', 400)
/** Ingest: records refused as a whole, a request_id stored or voided with other content, or repeated differently. */
export const ConflictingEventsError = createError<'USAGE_BATCH_CONFLICTING_EVENTS', 409, [string]>('USAGE_BATCH_CONFLICTING_EVENTS', '%s', 409)
/** Ingest into InfluxDB: a value the line protocol cannot carry (the caller's data, not the store). */
export const UnrepresentablePointError = createError<'USAGE_BATCH_UNREPRESENTABLE_POINT', 400, [string]>(
  'USAGE_BATCH_UNREPRESENTABLE_POINT',
  '%s',
  400,
)

/**
 * The raw usage store cannot take this work now (InfluxDB down, its dialect not known yet, a write
 * refused). The message is ours and says what to do; what the store said travels as the cause,
 * for the log and the run ledger only.
 */
export const RawStoreUnavailableError = createError<'USAGE_BATCH_RAW_STORE_UNAVAILABLE', 503, [string, ErrorOptions?]>(
  'USAGE_BATCH_RAW_STORE_UNAVAILABLE',
  'raw usage store unavailable: %s',
  503,
)
/** /today could not be computed: the raw store failed the live query. */
export const LiveFiguresUnavailableError = createError(
  'USAGE_BATCH_LIVE_FIGURES_UNAVAILABLE',
  'the raw usage store did not answer; live figures for today are unavailable (see the service log)',
  503,
)
/** A batch request arriving after shutdown began. */
export const ShuttingDownError = createError('USAGE_BATCH_SHUTTING_DOWN', 'the service is shutting down and takes no new batch work', 503)

/** True for an error made here (its message is ours and may be shown as is, whatever its status). */
export function isOwnError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith(ERROR_CODE_PREFIX)
}

/** The 409 for conflicting records, counting records, listing at most `listed` of them. */
export function conflictError(conflicts: readonly EventConflict[], listed = 100): Error {
  const records = new Set(conflicts.map((c) => c.index)).size
  return Object.assign(
    new ConflictingEventsError(`${records} record(s) conflict with records already stored or voided, or with each other; nothing was stored`),
    { itemErrors: conflicts.slice(0, listed) },
  )
}

/**
 * An error as one line for a log field or a run's message: its message and what its cause adds
 * (the cause's code when it has one, e.g. ECONNREFUSED behind undici's "fetch failed", else its
 * message), credentials redacted.
 */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return redactText(String(error))
  let text = error.message
  const cause = error.cause
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code
    const added = typeof code === 'string' && code !== '' ? code : cause.message
    if (added && !text.includes(added)) text += `: ${added}`
  }
  return redactText(text)
}
