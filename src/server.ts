// The only module that reads process.env, listens and handles signals.
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { createLogger } from './logger.js'
import { createRuntime } from './runtime.js'
import { authEnabled } from './plugins/auth.js'
import { isMainModule } from './main-module.js'

const SHUTDOWN_GRACE_MS = 8_000

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^(::ffff:)?127\./i.test(host)
}

/** SPEC §7: without tokens the API is open, so it may only listen on loopback unless told otherwise. */
export function checkExposure(config: Config): string | undefined {
  if (authEnabled(config) || config.AUTH_DISABLED || isLoopback(config.HOST)) return undefined
  return `refusing to listen on ${config.HOST} without API tokens: set API_ADMIN_TOKEN (and friends), bind HOST=127.0.0.1, or set AUTH_DISABLED=true`
}

export async function serve(env: Record<string, string | undefined>): Promise<void> {
  let config: Config
  try {
    config = loadConfig(env)
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`usage-batch: ${e.message}\n`)
      process.exit(1)
    }
    throw e
  }
  const log = createLogger({ level: config.LOG_LEVEL, pretty: process.stdout.isTTY })
  const exposure = checkExposure(config)
  if (exposure) {
    log.fatal(exposure)
    process.exit(1)
  }
  if (!authEnabled(config)) {
    log.warn(
      { host: config.HOST },
      config.AUTH_DISABLED ? 'auth is off: AUTH_DISABLED=true' : 'auth is off: no API tokens configured (loopback only)',
    )
  }

  const runtime = await createRuntime(config, log)
  const app = await buildApp(config, { ...runtime.deps, logger: log })

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    log.info({ signal }, 'shutting down')
    const hardStop = setTimeout(() => {
      log.error('shutdown took too long; exiting')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS + 1_500)
    hardStop.unref()
    try {
      await runtime.stopBackground(SHUTDOWN_GRACE_MS)
      await app.close()
      await runtime.close()
      log.info('stopped')
      process.exit(0)
    } catch (e) {
      log.error({ err: e }, 'error while shutting down')
      process.exit(1)
    }
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ host: config.HOST, port: config.PORT })
  // After listen: catch-up may take a while, and /health/live and reads must answer meanwhile.
  await runtime.startBackground(app)
}

// Started directly (npm start, node dist/src/server.js), not imported by the CLI or tests.
if (isMainModule(import.meta.url)) {
  await serve(process.env)
}
