// The InfluxDB-first raw store (docs/influxdb.md): picks the query dialect from the configuration or, with
// INFLUXDB_QUERY_LANGUAGE=auto, from the version the server reports on /ping.
import type { Config } from '../config.js'
import { systemClock, type Clock } from '../clock.js'
import { createFluxSource } from './flux.js'
import { RawStoreUnavailableError } from '../errors.js'
import {
  detectInfluxVersion,
  httpRequestFor,
  type FetchFn,
  type InfluxAuth,
  type InfluxVersion,
  type QueryLanguage,
} from './influx-http.js'
import { createInfluxQLSource } from './influxql.js'
import type { UsageSource } from './types.js'
import { redactText } from '../redact.js'

export interface InfluxSourceDeps {
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error?(obj: object, msg: string): void }
  /** Replaces node:http for /ping, InfluxQL and writes (tests inject fakes and faults through it). */
  fetch?: FetchFn
  clock?: Clock
  /** Background detection (INFLUXDB_QUERY_LANGUAGE=auto): the first retry delay and the cap it doubles up to. */
  retry?: { initialMs: number; maxMs: number }
}

export type InfluxConfig = Pick<
  Config,
  | 'INFLUXDB_URL'
  | 'INFLUXDB_TOKEN'
  | 'INFLUXDB_ORG'
  | 'INFLUXDB_BUCKET'
  | 'INFLUXDB_DATABASE'
  | 'INFLUXDB_USERNAME'
  | 'INFLUXDB_PASSWORD'
  | 'INFLUXDB_MEASUREMENT'
  | 'INFLUXDB_QUERY_LANGUAGE'
  | 'INFLUXDB_TIMEOUT_MS'
>

export class InfluxConfigError extends Error {
  override name = 'InfluxConfigError'
}

/** Detection retries: the delay doubles from initialMs up to maxMs, then stays there until InfluxDB answers. */
export const DEFAULT_DETECTION_RETRY = { initialMs: 1_000, maxMs: 60_000 }
/** A /ping answers in milliseconds; a silent network must not hold a detection for INFLUXDB_TIMEOUT_MS. */
const DETECTION_TIMEOUT_MS = 10_000
/** Work arriving while the dialect is unknown tries once itself, at most this often (a burst of ingests is one ping). */
const ON_DEMAND_ATTEMPT_INTERVAL_MS = 1_000

/** Where background dialect detection stands (shown in /health). */
export interface DialectDetection {
  state: 'detecting' | 'detected' | 'misconfigured'
  attempts: number
  last_error: string | null
  last_attempt_at: string | null
}

/**
 * Neither transport sends a URL with user:password@ (fetch refuses it and quotes it whole in its
 * error; nodeHttpRequest refuses it too): credentials given in INFLUXDB_URL become the 1.x
 * username and password (sent as basic auth), unless a token or INFLUXDB_USERNAME is set, which
 * then win; either way the URL is used without them.
 */
function withUrlCredentials(config: InfluxConfig): InfluxConfig {
  let parsed: URL
  try {
    parsed = new URL(config.INFLUXDB_URL ?? '')
  } catch {
    return config
  }
  if (!parsed.username && !parsed.password) return config
  const username = decodeURIComponent(parsed.username)
  const password = decodeURIComponent(parsed.password)
  parsed.username = ''
  parsed.password = ''
  const explicit = config.INFLUXDB_TOKEN !== undefined || config.INFLUXDB_USERNAME !== undefined
  return { ...config, INFLUXDB_URL: parsed.toString(), ...(explicit ? {} : { INFLUXDB_USERNAME: username, INFLUXDB_PASSWORD: password }) }
}

/**
 * Builds the InfluxDB source. With an explicit dialect it is ready at once (a token with InfluxQL
 * still asks the server its version, because 2.x wants `Token …` and 3.x `Bearer …`). With `auto`
 * it never waits for InfluxDB: the service must start and serve its summaries while InfluxDB is
 * down, so the dialect is detected in the background, retried with backoff, and until it is known
 * everything that needs InfluxDB fails with a clear 503 naming the reason (see `ready()`).
 */
export async function createInfluxSource(given: InfluxConfig, deps: InfluxSourceDeps): Promise<UsageSource> {
  const config = withUrlCredentials(given)
  const url = config.INFLUXDB_URL
  if (!url) throw new InfluxConfigError('INFLUXDB_URL is required for the InfluxDB-first mode')
  const token = config.INFLUXDB_TOKEN
  const preliminaryAuth: InfluxAuth = token
    ? { kind: 'token', token, scheme: 'Token' }
    : config.INFLUXDB_USERNAME
      ? { kind: 'basic', username: config.INFLUXDB_USERNAME, password: config.INFLUXDB_PASSWORD ?? '' }
      : { kind: 'none' }
  const detect = () =>
    detectInfluxVersion(url, httpRequestFor(deps.fetch), { auth: preliminaryAuth, timeoutMs: Math.min(config.INFLUXDB_TIMEOUT_MS, DETECTION_TIMEOUT_MS) })

  if (config.INFLUXDB_QUERY_LANGUAGE === 'auto') return createDetectingSource(config, deps, detect, preliminaryAuth)

  let version: InfluxVersion | undefined
  if (config.INFLUXDB_QUERY_LANGUAGE === 'influxql' && token) {
    try {
      version = await detect()
    } catch (e) {
      deps.log.warn({ err: (e as Error).message }, 'InfluxDB version unknown; assuming 2.x (Authorization: Token)')
    }
  }
  return buildSource(config, deps, config.INFLUXDB_QUERY_LANGUAGE, version, preliminaryAuth)
}

function buildSource(
  config: InfluxConfig,
  deps: InfluxSourceDeps,
  language: QueryLanguage,
  version: InfluxVersion | undefined,
  preliminaryAuth: InfluxAuth,
): UsageSource {
  const url = config.INFLUXDB_URL!
  const token = config.INFLUXDB_TOKEN
  const timeoutMs = config.INFLUXDB_TIMEOUT_MS
  const measurement = config.INFLUXDB_MEASUREMENT
  deps.log.info(
    { version: version?.version ?? null, query_language: language, chosen_by: config.INFLUXDB_QUERY_LANGUAGE === 'auto' ? 'auto' : 'config', measurement },
    'InfluxDB query dialect chosen',
  )

  if (language === 'flux') {
    if (!config.INFLUXDB_ORG || !config.INFLUXDB_BUCKET) throw new InfluxConfigError('INFLUXDB_ORG and INFLUXDB_BUCKET are required for Flux')
    return createFluxSource({ url, token, org: config.INFLUXDB_ORG, bucket: config.INFLUXDB_BUCKET, measurement, timeoutMs, fetch: deps.fetch })
  }

  const database = config.INFLUXDB_DATABASE ?? config.INFLUXDB_BUCKET
  if (!database) throw new InfluxConfigError('INFLUXDB_DATABASE (or INFLUXDB_BUCKET) is required for InfluxQL')
  const major = version?.major ?? (token ? 2 : 1)
  const auth: InfluxAuth = token && major >= 3 ? { kind: 'token', token, scheme: 'Bearer' } : preliminaryAuth
  return createInfluxQLSource({
    url,
    database,
    measurement,
    auth,
    // 1.x has only /write; 2.x and 3.x take /api/v2/write (the bucket or database by name).
    writeApi: major === 1 ? { kind: 'v1' } : { kind: 'v2', org: config.INFLUXDB_ORG },
    timeoutMs,
    fetch: deps.fetch,
  })
}

/**
 * INFLUXDB_QUERY_LANGUAGE=auto: a source whose dialect is found in the background. The first
 * attempt starts at once; failures are retried with doubling delays up to a cap, and logged when
 * the reason changes, never per attempt. Work that arrives meanwhile makes one attempt of its own
 * (so a start-up catch-up right after InfluxDB came back does not wait for the timer) and otherwise
 * fails with RawStoreUnavailableError (503) saying why. A dialect that is found but cannot be used
 * (Flux without INFLUXDB_ORG) is a configuration error: reported, and not retried.
 */
function createDetectingSource(
  config: InfluxConfig,
  deps: InfluxSourceDeps,
  detect: () => Promise<InfluxVersion>,
  preliminaryAuth: InfluxAuth,
): UsageSource & { detection(): DialectDetection } {
  const clock = deps.clock ?? systemClock
  const retry = deps.retry ?? DEFAULT_DETECTION_RETRY
  let inner: UsageSource | undefined
  let misconfigured: string | undefined
  let attempts = 0
  let lastError: string | undefined
  let lastAttemptMs: number | undefined
  let pending: Promise<UsageSource> | undefined
  let timer: NodeJS.Timeout | undefined
  let delayMs = retry.initialMs
  let closed = false

  // The reason /ping failed is InfluxDB's (or the network's) text: the cause carries it to the log,
  // the run ledger and /health; the 503 body says it in our words.
  const notReady = () =>
    misconfigured
      ? new RawStoreUnavailableError(`InfluxDB cannot be used: ${misconfigured}`)
      : new RawStoreUnavailableError(
          'InfluxDB query dialect not known yet (INFLUXDB_QUERY_LANGUAGE=auto; its /ping has not answered); detection retries in the background, see GET /health',
          { cause: new Error(lastError ?? 'no answer yet') },
        )

  function attempt(): Promise<UsageSource> {
    pending ??= (async () => {
      attempts += 1
      lastAttemptMs = clock.now()
      let version: InfluxVersion
      try {
        version = await detect()
      } catch (e) {
        // Shown in /health and in 503 bodies: a URL with credentials never is.
        const message = redactText((e as Error).message)
        if (message !== lastError) {
          deps.log.warn(
            { err: message, attempts, retry_in_ms: delayMs },
            'InfluxDB does not answer; the query dialect (INFLUXDB_QUERY_LANGUAGE=auto) is detected in the background, and until then batch runs, /today and ingest fail',
          )
        }
        lastError = message
        throw e
      }
      try {
        inner = buildSource(config, deps, version.queryLanguage, version, preliminaryAuth)
      } catch (e) {
        misconfigured = (e as Error).message
        ;(deps.log.error ?? deps.log.warn)({ err: misconfigured, version: version.version }, 'InfluxDB answered, but its dialect cannot be used with this configuration')
        throw e
      }
      if (lastError !== undefined) deps.log.info({ attempts, version: version.version }, 'InfluxDB answers again; dialect detected')
      lastError = undefined
      return inner
    })().finally(() => {
      pending = undefined
    })
    return pending
  }

  function retryLater() {
    if (closed || inner || misconfigured) return
    timer = setTimeout(() => {
      timer = undefined
      attempt().then(
        () => undefined,
        () => {
          delayMs = Math.min(delayMs * 2, retry.maxMs)
          retryLater()
        },
      )
    }, delayMs)
    // The timer must not keep a finishing CLI process alive.
    timer.unref()
  }

  async function ensure(): Promise<UsageSource> {
    if (inner) return inner
    if (misconfigured) throw notReady()
    const recentlyTried = lastAttemptMs !== undefined && clock.now() - lastAttemptMs < ON_DEMAND_ATTEMPT_INTERVAL_MS
    if (!pending && recentlyTried) throw notReady()
    try {
      return await attempt()
    } catch {
      throw notReady()
    }
  }

  attempt().catch(() => retryLater())

  return {
    dataSource: 'influxdb_first',
    get dialect() {
      return inner?.dialect ?? 'unknown (detecting)'
    },
    get listClients() {
      const source = inner
      return source?.listClients?.bind(source)
    },
    async ready() {
      await ensure()
    },
    async *aggregate(window, options) {
      yield* (await ensure()).aggregate(window, options)
    },
    async ingest(events) {
      return (await ensure()).ingest(events)
    },
    // Both dialects can say how to delete points by hand; until the dialect is known, neither can.
    async externalDeletes(requestIds, signal) {
      const source = await ensure()
      if (!source.externalDeletes) throw new Error(`the ${source.dialect} source cannot describe deletes`)
      return source.externalDeletes(requestIds, signal)
    },
    async check() {
      if (inner) return inner.check()
      return {
        status: 'down',
        detail: { version: null, query_language: null, error: notReady().message.replace(/^raw usage store unavailable: /, ''), detection: detection() },
      }
    },
    detection,
    async close() {
      closed = true
      if (timer) clearTimeout(timer)
      await inner?.close()
    },
  }

  function detection(): DialectDetection {
    return {
      state: inner ? 'detected' : misconfigured ? 'misconfigured' : 'detecting',
      attempts,
      last_error: misconfigured ?? lastError ?? null,
      last_attempt_at: lastAttemptMs === undefined ? null : new Date(lastAttemptMs).toISOString(),
    }
  }
}
