// The environment, validated once against one TypeBox schema. Keys are the variable names of
// docs/configuration.md so that an error message and the docs speak the same language.
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { isValidTimeZone } from './clock.js'
import { canonicalDecimal, parseDecimal } from './money.js'
import { cronProblem } from './cron.js'
import { redactText } from './redact.js'
import { RATE_POLICIES, type DataSource } from './db/enums.js'

const DECIMAL_PATTERN = '^\\d+(\\.\\d+)?$'

const Bool = Type.Boolean()
const PositiveInt = (defaultValue: number, maximum = 1_000_000) =>
  Type.Integer({ minimum: 1, maximum, default: defaultValue })
const NonNegativeInt = (defaultValue: number, maximum = 1_000_000) =>
  Type.Integer({ minimum: 0, maximum, default: defaultValue })
const OptionalText = Type.Optional(Type.String({ minLength: 1 }))

export const EnvSchema = Type.Object({
  // process
  HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'address to listen on' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  SQLITE_PATH: Type.String({ minLength: 1, default: './data/usage.db' }),
  /**
   * postgres://user:password@host:port/database: everything SQLITE_PATH would hold lives in this
   * PostgreSQL database instead, shared by several replicas (docs/postgresql.md). Unset: SQLite.
   */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),

  // the day and money
  BUSINESS_TIMEZONE: Type.String({ minLength: 1, default: 'Europe/Warsaw' }),
  USAGE_MARKUP_MULTIPLIER: Type.String({ pattern: DECIMAL_PATTERN, default: '1.3' }),
  EXCHANGE_RATE_POLICY: Type.Enum([...RATE_POLICIES], { default: 'previous-business-day' }),
  NBP_API_URL: Type.String({ pattern: '^https?://', default: 'https://api.nbp.pl/api' }),
  // Per attempt, not per resolution: a day's worst case is about (retries + 1) × timeout plus backoff.
  NBP_TIMEOUT_MS: PositiveInt(10_000, 120_000),
  NBP_MAX_RETRIES: NonNegativeInt(3, 10),

  // raw store
  INFLUXDB_FIRST_ENABLED: Type.Optional(Bool),
  INFLUXDB_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  INFLUXDB_TOKEN: OptionalText,
  INFLUXDB_ORG: OptionalText,
  INFLUXDB_BUCKET: OptionalText,
  INFLUXDB_DATABASE: OptionalText,
  INFLUXDB_USERNAME: OptionalText,
  INFLUXDB_PASSWORD: OptionalText,
  INFLUXDB_MEASUREMENT: Type.String({ minLength: 1, default: 'usage_tracking' }),
  INFLUXDB_QUERY_LANGUAGE: Type.Enum(['auto', 'flux', 'influxql'], { default: 'auto' }),
  INFLUXDB_AGGREGATION_BATCH_SIZE: PositiveInt(5, 100),
  /**
   * per-client (default): list the day's clients, then one query per client, at most
   * INFLUXDB_AGGREGATION_BATCH_SIZE at once — measured faster than one grouped query on
   * InfluxDB 1.x, and a failing client fails alone. grouped: one query for the whole day.
   * Only InfluxQL offers per-client; Flux and SQLite always use one grouped query.
   */
  INFLUXDB_AGGREGATION_MODE: Type.Enum(['per-client', 'grouped'], { default: 'per-client' }),
  /**
   * Bound on one InfluxDB request: a write batch, or a whole streamed query. Generous because one
   * grouped day query over 200k series took 2.5 min on influxd 1.6.7 (bench/influx-grouping.ts).
   */
  INFLUXDB_TIMEOUT_MS: PositiveInt(300_000, 3_600_000),

  // batch and scheduler
  BATCH_MAX_RANGE_DAYS: PositiveInt(366, 3660),
  BATCH_SCHEDULE_CRON: Type.String({ minLength: 9, default: '0 13 * * *' }),
  BATCH_LOOKBACK_DAYS: NonNegativeInt(2, 366),
  BATCH_CATCHUP_DAYS: NonNegativeInt(7, 366),
  BATCH_SCHEDULER_ENABLED: Type.Boolean({ default: true }),

  // data lifecycle and alerts
  RAW_RETENTION_DAYS: NonNegativeInt(90, 36_600),
  RAW_ARCHIVE_DIR: OptionalText,
  ALERT_WEBHOOK_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  ALERT_SPIKE_FACTOR: Type.Number({ exclusiveMinimum: 1, maximum: 1_000_000, default: 5 }),

  // auth
  API_ADMIN_TOKEN: OptionalText,
  API_READ_TOKEN: OptionalText,
  API_INGEST_TOKEN: OptionalText,
  API_CLIENT_TOKENS: Type.Optional(Type.String({ pattern: '^[^=,]+=[^=,]+(,[^=,]+=[^=,]+)*$' })),
  AUTH_DISABLED: Type.Boolean({ default: false }),
})

/** Variables whose values never appear in messages or logs. */
export const SECRET_NAME = /TOKEN|PASSWORD|WEBHOOK/

export type Env = Static<typeof EnvSchema>

export type Config = Env & {
  /** INFLUXDB_FIRST_ENABLED unset means "true when INFLUXDB_URL is set" (docs/data-model.md#modes). */
  influxdbFirst: boolean
  /** Canonical decimal text of USAGE_MARKUP_MULTIPLIER. */
  defaultMarkupRate: string
}

/** Where raw usage lives in this configuration: InfluxDB, or the embedded table of the store in use. */
export function rawDataSource(config: Pick<Config, 'influxdbFirst' | 'DATABASE_URL'>): DataSource {
  if (config.influxdbFirst) return 'influxdb_first'
  return config.DATABASE_URL === undefined ? 'sqlite' : 'postgresql'
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** A bearer token is at least this long (docs/api.md#authentication); `openssl rand -hex 32` gives 64 characters. */
export const MIN_TOKEN_LENGTH = 16
/** Placeholders a manifest or an example ships with; a token holding one was never replaced. */
const PLACEHOLDER = /change[-_]?me/i
const MAKE_A_TOKEN = 'make one with: openssl rand -hex 32'

/** Each configured API token with its variable (and, in API_CLIENT_TOKENS, its client). */
function apiTokens(env: Record<string, unknown>): Array<{ name: string; client?: string; token: string }> {
  const found: Array<{ name: string; client?: string; token: string }> = []
  for (const name of ['API_ADMIN_TOKEN', 'API_READ_TOKEN', 'API_INGEST_TOKEN'] as const) {
    const value = env[name]
    if (typeof value === 'string') found.push({ name, token: value })
  }
  const clients = env.API_CLIENT_TOKENS
  if (typeof clients === 'string') {
    for (const pair of clients.split(',')) {
      const [client = '', token = ''] = pair.split('=').map((s) => s.trim())
      found.push({ name: 'API_CLIENT_TOKENS', client, token })
    }
  }
  return found
}

/** Why a token may not be used, or undefined; never quotes the token. */
function tokenProblem(token: string): string | undefined {
  if (PLACEHOLDER.test(token)) return `is a placeholder (it contains "change-me"), not a token: ${MAKE_A_TOKEN}`
  if (token.length < MIN_TOKEN_LENGTH) return `must be at least ${MIN_TOKEN_LENGTH} characters (value hidden): ${MAKE_A_TOKEN}`
  return undefined
}

/** Strict text → value: "1.5" is no integer and "yes" no boolean; the schema then says why. */
function fromEnvText(text: string, type: string | undefined): unknown {
  if (type === 'integer') return /^-?\d+$/.test(text.trim()) ? Number(text) : text
  if (type === 'number') return /^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text
  if (type === 'boolean') {
    const t = text.trim().toLowerCase()
    if (t === 'true' || t === '1') return true
    if (t === 'false' || t === '0') return false
    return text
  }
  return text
}

function expectation(name: string, message: string): string {
  const schema = (EnvSchema.properties as Record<string, { enum?: string[]; type?: string; pattern?: string }>)[name]
  if (schema?.enum) return `must be one of ${schema.enum.join(', ')}`
  if (schema?.type === 'boolean') return 'must be true or false'
  if (schema?.type === 'integer') return 'must be a whole number' + (message.startsWith('must be integer') ? '' : ` (${message})`)
  if (schema?.type === 'number') return 'must be a number' + (message.startsWith('must be number') ? '' : ` (${message})`)
  return message
}

/** Why DATABASE_URL cannot name a PostgreSQL database, or undefined. */
function databaseUrlProblem(url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'must be a URL postgres://user:password@host:port/database (percent-encode special characters in the password)'
  }
  if (parsed.hostname === '') return 'must name the host: postgres://user:password@host:port/database'
  if (parsed.pathname.length <= 1) return 'must name the database: postgres://user:password@host:port/database'
  return undefined
}

/** Reads and validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(source: Record<string, string | undefined>): Config {
  const raw: Record<string, unknown> = {}
  for (const [key, schema] of Object.entries(EnvSchema.properties)) {
    const value = source[key]
    // Empty strings count as unset, as with a bare `VAR=` in a shell or a compose file.
    if (value !== undefined && value !== '') raw[key] = fromEnvText(value, (schema as { type?: string }).type)
  }
  const withDefaults = Value.Default(EnvSchema, raw) as Record<string, unknown>
  const problems: string[] = []
  const reported = new Set<string>()
  for (const error of Value.Errors(EnvSchema, withDefaults)) {
    const name = error.instancePath.replace(/^\//, '')
    if (reported.has(name)) continue
    reported.add(name)
    // Secrets are named, never echoed: this message goes to the log.
    const got = SECRET_NAME.test(name) ? 'value hidden' : `got ${JSON.stringify(source[name] === undefined ? undefined : redactText(source[name]))}`
    problems.push(`${name}: ${expectation(name, error.message)} (${got})`)
  }
  // No early throw: the checks below run too, so one message names every bad variable. Each
  // skips a variable the schema already refused, which may still hold raw text here.
  const env = withDefaults as Env

  const zoneValid = !reported.has('BUSINESS_TIMEZONE') && isValidTimeZone(env.BUSINESS_TIMEZONE)
  if (!reported.has('BUSINESS_TIMEZONE') && !zoneValid) {
    problems.push(`BUSINESS_TIMEZONE: must be an IANA time zone name such as Europe/Warsaw (got ${JSON.stringify(env.BUSINESS_TIMEZONE)})`)
  }
  // Checked here, not when the scheduler starts, so a bad schedule stops the process at start-up
  // with the variable named, even on a replica whose scheduler is off today.
  const cron = zoneValid ? cronProblem(env.BATCH_SCHEDULE_CRON, env.BUSINESS_TIMEZONE) : undefined
  if (cron) problems.push(`BATCH_SCHEDULE_CRON: ${cron}`)
  let defaultMarkupRate = ''
  if (!reported.has('USAGE_MARKUP_MULTIPLIER')) {
    // The same bounds as a per-client markup (PUT /clients/{id}/pricing): never below cost.
    defaultMarkupRate = canonicalDecimal(env.USAGE_MARKUP_MULTIPLIER)
    const markup = parseDecimal(defaultMarkupRate)
    if (markup.units < 10n ** BigInt(markup.scale) || markup.units > 10n * 10n ** BigInt(markup.scale)) {
      problems.push(`USAGE_MARKUP_MULTIPLIER: must be between 1 and 10 (got ${JSON.stringify(env.USAGE_MARKUP_MULTIPLIER)})`)
    }
  }
  if (!reported.has('DATABASE_URL') && env.DATABASE_URL !== undefined) {
    const problem = databaseUrlProblem(env.DATABASE_URL)
    if (problem) problems.push(`DATABASE_URL: ${problem} (got ${JSON.stringify(redactText(env.DATABASE_URL))})`)
  }
  const influxdbFirst = env.INFLUXDB_FIRST_ENABLED ?? env.INFLUXDB_URL !== undefined
  // A refused INFLUXDB_FIRST_ENABLED ("maybe") is truthy text, not a request for InfluxDB.
  if (!reported.has('INFLUXDB_FIRST_ENABLED') && influxdbFirst && env.INFLUXDB_URL === undefined) {
    problems.push('INFLUXDB_URL: required when INFLUXDB_FIRST_ENABLED=true')
  }
  // A guessable or placeholder token is worse than none: with it the service listens on every
  // interface believing it is protected. A refused API_CLIENT_TOKENS is not split into tokens.
  const tokens = apiTokens(reported.has('API_CLIENT_TOKENS') ? { ...env, API_CLIENT_TOKENS: undefined } : env)
  for (const { name, client, token } of tokens) {
    const problem = tokenProblem(token)
    if (problem) problems.push(`${name}: ${client === undefined ? 'the token' : `the token of client ${JSON.stringify(client)}`} ${problem}`)
  }
  // One token, one role: a token configured twice would silently get the first role that matches.
  if (new Set(tokens.map((t) => t.token)).size !== tokens.length) {
    problems.push('API_*_TOKEN(S): the same token is configured for more than one role or client (values hidden)')
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`)
  return { ...env, influxdbFirst, defaultMarkupRate }
}
