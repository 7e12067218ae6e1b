// pino, JSON by default, pretty only when a person watches a terminal. Secrets never reach a line.
import pino, { type Logger } from 'pino'
import { SECRET_NAME } from './config.js'
import { redactDeep, redactText, redactUrl } from './redact.js'

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.API_ADMIN_TOKEN',
  '*.API_READ_TOKEN',
  '*.API_INGEST_TOKEN',
  '*.API_CLIENT_TOKENS',
  '*.INFLUXDB_TOKEN',
  '*.INFLUXDB_PASSWORD',
  '*.ALERT_WEBHOOK_URL',
  '*.token',
  '*.password',
]

export function createLogger(options: { level: string; pretty?: boolean; destination?: pino.DestinationStream }): Logger {
  const base: pino.LoggerOptions = {
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'usage-batch' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Paths above hide secrets by name; these hide credentials quoted inside text: an error whose
    // message or cause names a URL with user:password@ (undici does), a reason string, the message.
    serializers: { err: serializeError },
    formatters: { log: (object) => redactDeep(object) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redactText(a) : a)) as Parameters<typeof method>)
      },
    },
  }
  if (options.destination) return pino(base, options.destination)
  if (options.pretty) return pino({ ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard' } } })
  return pino(base)
}

/**
 * The configuration as it may be logged at start: secret values replaced (by name, not by
 * redact paths, so a new secret variable is covered as soon as its name says TOKEN or PASSWORD),
 * and credentials embedded in URLs removed.
 */
export function configForLog(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) {
    if (SECRET_NAME.test(key)) out[key] = value === undefined ? undefined : '[redacted]'
    // Any URL (http, https, postgres): its password and credential-like parameters go.
    else if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) out[key] = redactUrl(value)
    else out[key] = value
  }
  return out
}

/** pino's error serializer (message and stack with their causes), every string redacted. */
function serializeError(err: unknown): unknown {
  const serialized = pino.stdSerializers.err(err as Error) as unknown
  if (serialized === null || typeof serialized !== 'object') return redactDeep(serialized)
  // The serializer's result keeps the raw error on its prototype; only its own fields are written.
  return redactDeep({ ...(serialized as Record<string, unknown>) })
}
