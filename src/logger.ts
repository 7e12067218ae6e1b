// pino, JSON by default, pretty only when a person watches a terminal. Secrets never reach a line.
import pino, { type Logger } from 'pino'
import { SECRET_NAME } from './config.js'

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
    else if (typeof value === 'string' && /^https?:\/\//.test(value)) out[key] = withoutCredentials(value)
    else out[key] = value
  }
  return out
}

function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url)
    if (!parsed.username && !parsed.password) return url
    parsed.username = ''
    parsed.password = ''
    return parsed.toString()
  } catch {
    return '[unparsable url]'
  }
}
