// pino, JSON by default, pretty only when a person watches a terminal. Secrets never reach a line.
import pino, { type Logger } from 'pino'

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
