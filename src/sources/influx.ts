// The InfluxDB-first raw store (SPEC §2): picks the query dialect from the configuration or, with
// INFLUXDB_QUERY_LANGUAGE=auto, from the version the server reports on /ping.
import type { Config } from '../config.js'
import { createFluxSource } from './flux.js'
import { detectInfluxVersion, type FetchFn, type InfluxAuth, type InfluxVersion, type QueryLanguage } from './influx-http.js'
import { createInfluxQLSource } from './influxql.js'
import type { UsageSource } from './types.js'
import { redactText } from '../redact.js'

export interface InfluxSourceDeps {
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }
  fetch?: FetchFn
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

/**
 * Builds the InfluxDB source. Asks the server its version when the dialect is `auto`, and also
 * when a token is used with InfluxQL, because 2.x wants `Token …` and 3.x `Bearer …`. With `auto`
 * an unreachable server stops the start: guessing the dialect would fail later, less clearly.
 */
export async function createInfluxSource(config: InfluxConfig, deps: InfluxSourceDeps): Promise<UsageSource> {
  const url = config.INFLUXDB_URL
  if (!url) throw new InfluxConfigError('INFLUXDB_URL is required for the InfluxDB-first mode')
  const timeoutMs = config.INFLUXDB_TIMEOUT_MS
  const token = config.INFLUXDB_TOKEN
  const preliminaryAuth: InfluxAuth = token
    ? { kind: 'token', token, scheme: 'Token' }
    : config.INFLUXDB_USERNAME
      ? { kind: 'basic', username: config.INFLUXDB_USERNAME, password: config.INFLUXDB_PASSWORD ?? '' }
      : { kind: 'none' }

  let version: InfluxVersion | undefined
  if (config.INFLUXDB_QUERY_LANGUAGE === 'auto' || (config.INFLUXDB_QUERY_LANGUAGE === 'influxql' && token)) {
    try {
      version = await detectInfluxVersion(url, deps.fetch, { auth: preliminaryAuth, timeoutMs })
    } catch (e) {
      if (config.INFLUXDB_QUERY_LANGUAGE === 'auto') {
        throw new InfluxConfigError(`INFLUXDB_QUERY_LANGUAGE=auto but the InfluxDB version could not be read: ${redactText((e as Error).message)}`, {
          cause: e,
        })
      }
      deps.log.warn({ err: (e as Error).message }, 'InfluxDB version unknown; assuming 2.x (Authorization: Token)')
    }
  }
  const language: QueryLanguage =
    config.INFLUXDB_QUERY_LANGUAGE === 'auto' ? version!.queryLanguage : config.INFLUXDB_QUERY_LANGUAGE

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
