// One JSON error shape for every route: {statusCode, error, message, errors?} (docs/api.md#errors).
// 5xx bodies never carry internals, and a 503 says what is unavailable only in this service's own
// words (errors.ts); validation errors are listed per field (and per record for list bodies).
import type { FastifyBaseLogger, FastifyError, FastifySchemaValidationError } from 'fastify'
import { DATE_RULE, MONTH_RULE } from '../clock.js'
import { describe, isOwnError } from '../errors.js'
import type { ErrorBody } from '../schemas/common.js'

type ItemError = NonNullable<ErrorBody['errors']>[number]

const STATUS_NAMES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  503: 'Service Unavailable',
}

/** A body lists at most this many item errors; its message still counts them all. */
export const MAX_LISTED_ERRORS = 100

/**
 * Ajv errors → one entry per offending field. A union (anyOf) failure reports each branch too;
 * those are folded into the single "matches none of the allowed forms" line.
 */
export function validationItemErrors(validation: FastifySchemaValidationError[], context?: string): ItemError[] {
  const byField = new Map<string, ItemError & { keyword: string }>()
  for (const v of validation) {
    const path = v.instancePath.split('/').filter(Boolean)
    const params = (v.params ?? {}) as { missingProperty?: string; additionalProperty?: string }
    const named = params.additionalProperty ?? params.missingProperty
    const index = path[0] === 'events' && path[1] !== undefined ? Number(path[1]) : undefined
    const field = (index !== undefined ? path.slice(2) : path).concat(named ? [named] : []).join('.') || context || 'body'
    const message =
      params.additionalProperty !== undefined
        ? 'is not a known field'
        : v.keyword === 'anyOf'
          ? anyOfMessage(field)
          : v.keyword === 'format'
            ? formatMessage((v.params as { format?: string }).format, v.message)
            : (v.message ?? 'invalid')
    const key = `${index ?? ''}|${field}`
    const seen = byField.get(key)
    // The anyOf summary wins over its branches' individual complaints.
    if (seen && !(v.keyword === 'anyOf' && seen.keyword !== 'anyOf')) continue
    byField.set(key, { ...(index !== undefined ? { index } : {}), field, message, keyword: v.keyword })
  }
  return [...byField.values()].map(({ keyword: _keyword, ...rest }) => rest)
}

/** Dates and months say their form and the accepted range (clock.ts), whatever the route. */
function formatMessage(format: string | undefined, fallback: string | undefined): string {
  if (format === 'date') return `must be ${DATE_RULE}`
  if (format === 'month') return `must be ${MONTH_RULE}`
  return fallback ?? 'invalid'
}

function anyOfMessage(field: string): string {
  if (field === 'cost_usd') return 'must be a non-negative number or a decimal string such as "0.000150"'
  return 'matches none of the allowed forms'
}

export function errorBody(error: FastifyError & { itemErrors?: ItemError[] }): ErrorBody {
  if (error.validation) {
    const all = validationItemErrors(error.validation, error.validationContext)
    const errors = all.slice(0, MAX_LISTED_ERRORS)
    const first = errors[0]
    const summary = first ? `${first.index !== undefined ? `record ${first.index}: ` : ''}${first.field} ${first.message}` : error.message
    return {
      statusCode: 400,
      error: 'Bad Request',
      message: `invalid ${error.validationContext ?? 'request'}: ${summary}${all.length > 1 ? ` (and ${all.length - 1} more)` : ''}`,
      errors,
    }
  }
  const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  if (statusCode >= 500 && !(statusCode === 503 && isOwnError(error))) {
    const unavailable = statusCode === 503
    return {
      statusCode,
      error: unavailable ? STATUS_NAMES[503]! : 'Internal Server Error',
      message: unavailable ? 'service unavailable; see the service log' : 'internal error; see the service log',
    }
  }
  return {
    statusCode,
    error: STATUS_NAMES[statusCode] ?? 'Error',
    message: error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'the body must be JSON: send content-type: application/json' : error.message,
    ...(error.itemErrors ? { errors: error.itemErrors } : {}),
  }
}

/**
 * The log line of a refused request. A 503 is a dependency being unavailable (InfluxDB down or not
 * detected yet, shutting down): not a bug, so no stack and not one error line per request during an
 * outage, but with what the dependency said (the body does not carry it).
 */
export function logRefusal(log: FastifyBaseLogger, error: FastifyError, body: ErrorBody): void {
  if (body.statusCode === 503) log.warn({ statusCode: 503, reason: body.message, detail: describe(error) }, 'request refused: unavailable')
  else if (body.statusCode >= 500) log.error({ err: error }, 'request failed')
  else log.info({ statusCode: body.statusCode, reason: body.message }, 'request refused')
}
