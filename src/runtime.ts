// Wiring of the long-lived parts shared by the server and the CLI: the database, the raw store,
// the rate provider and the batch service. Opens things only when called.
import type { Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config.js'
import { systemClock, type Clock } from './clock.js'
import { openDb, type Db } from './db/open.js'
import { configForLog } from './logger.js'
import { lastSuccessDate } from './db/runs.js'
import { createMetrics, type Metrics } from './metrics.js'
import { createBatchService, type BatchService } from './batch/service.js'
import { noRateProvider, type RateProvider } from './rates/types.js'
import { createSqliteSource } from './sources/sqlite.js'
import type { UsageSource } from './sources/types.js'

export interface Runtime {
  deps: { db: Db; source: UsageSource; rates: RateProvider; clock: Clock; batch: BatchService; metrics: Metrics }
  /** Starts background work (scheduler, catch-up) once the app exists. */
  startBackground(app: FastifyInstance): Promise<void>
  /** Stops background work; lets a running day finish within graceMs or interrupts it. */
  stopBackground(graceMs: number): Promise<void>
  close(): Promise<void>
}

export async function createRuntime(config: Config, log: Logger, options: { clock?: Clock } = {}): Promise<Runtime> {
  const clock = options.clock ?? systemClock
  log.info({ config: configForLog(config) }, 'configuration')
  // Migrations run here, before the server listens (SPEC §6).
  const db = openDb({ path: config.SQLITE_PATH })
  log.info({ sqlite: config.SQLITE_PATH }, 'database open, migrations applied')
  // Made before the source, rate provider and batch service so each can report through it.
  const metrics = createMetrics({ lastSuccessDate: () => lastSuccessDate(db) })
  const source = createSqliteSource({ db, clock, path: config.SQLITE_PATH })
  const rates: RateProvider = noRateProvider
  const batch = createBatchService({
    db,
    source,
    rates,
    clock,
    log,
    timeZone: config.BUSINESS_TIMEZONE,
    defaultMarkupRate: config.defaultMarkupRate,
    onRunFinished: (run) => metrics.batchRunFinished(run),
  })
  log.info({ dataSource: source.dataSource, dialect: source.dialect }, 'raw usage store selected')

  return {
    deps: { db, source, rates, clock, batch, metrics },
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
