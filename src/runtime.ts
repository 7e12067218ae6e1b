// Wiring of the long-lived parts shared by the server and the CLI: the database, the raw store,
// the rate provider and the batch service. Opens things only when called.
import type { Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { systemClock, type Clock } from './clock.js'
import { openDb, type Db } from './db/open.js'
import { createBatchService, type BatchService } from './batch/service.js'
import type { RateProvider } from './rates/types.js'
import { createNbpClient } from './rates/nbp.js'
import { createRateProvider } from './rates/resolve.js'
import { createSqliteSource } from './sources/sqlite.js'
import type { UsageSource } from './sources/types.js'

export interface Runtime {
  deps: { db: Db; source: UsageSource; rates: RateProvider; clock: Clock; batch: BatchService }
  /** Starts background work (scheduler, catch-up) once the app exists. */
  startBackground(app: FastifyInstance): Promise<void>
  /** Stops background work; lets a running day finish within graceMs or interrupts it. */
  stopBackground(graceMs: number): Promise<void>
  close(): Promise<void>
}

export async function createRuntime(config: Config, log: Logger, options: { clock?: Clock } = {}): Promise<Runtime> {
  const clock = options.clock ?? systemClock
  // Migrations run here, before the server listens (SPEC §6).
  const db = openDb({ path: config.SQLITE_PATH })
  log.info({ sqlite: config.SQLITE_PATH }, 'database open, migrations applied')
  const source = createSqliteSource({ db, clock, path: config.SQLITE_PATH })
  const rates: RateProvider = createRateProvider({
    db,
    nbp: createNbpClient({ baseUrl: config.NBP_API_URL, timeoutMs: config.NBP_TIMEOUT_MS, maxRetries: config.NBP_MAX_RETRIES }),
    policy: config.EXCHANGE_RATE_POLICY,
    clock,
    log,
  })
  const batch = createBatchService({
    db,
    source,
    rates,
    clock,
    log,
    timeZone: config.BUSINESS_TIMEZONE,
    defaultMarkupRate: config.defaultMarkupRate,
  })
  log.info({ dataSource: source.dataSource, dialect: source.dialect }, 'raw usage store selected')

  return {
    deps: { db, source, rates, clock, batch },
    async startBackground() {},
    async stopBackground(graceMs) {
      await batch.stop(graceMs)
    },
    async close() {
      await source.close()
      db.$client.close()
    },
  }
}
