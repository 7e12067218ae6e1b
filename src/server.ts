// The HTTP server: the one module that listens and handles the server's signals. Its environment
// comes from its caller: process.env when started directly (the block at the end), or the CLI's
// `serve`; the CLI (cli.ts) is the only other module that reads process.env.
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { createLogger } from './logger.js'
import { createServices, type ServiceDeps } from './services.js'
import { authEnabled } from './plugins/auth.js'
import { isMainModule } from './main-module.js'

const SHUTDOWN_GRACE_MS = 8_000

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^(::ffff:)?127\./i.test(host)
}

/** Without tokens the API is open, so it may only listen on loopback unless told otherwise (docs/api.md#authentication). */
export function checkExposure(config: Config): string | undefined {
  if (authEnabled(config) || config.AUTH_DISABLED || isLoopback(config.HOST)) return undefined
  return `refusing to listen on ${config.HOST} without API tokens: set API_ADMIN_TOKEN (and friends), bind HOST=127.0.0.1, or set AUTH_DISABLED=true`
}

/** Why the server cannot listen on HOST:PORT, as a sentence naming both and what to do; undefined for other errors. */
export function listenProblem(error: unknown, host: string, port: number): string | undefined {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the address is already in use (another process, perhaps another usage-batch, holds it); stop that process or set PORT (or HOST) to a free one`
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need privileges); set PORT to 1024 or above`
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: HOST is not an address of this machine; set HOST to one of its addresses, 127.0.0.1 or 0.0.0.0`
    default:
      return undefined
  }
}

/** `deps`: composition-root options beside the logger (tests shorten the replica timings). */
export async function serve(env: Record<string, string | undefined>, deps: Omit<Partial<ServiceDeps>, 'log'> = {}): Promise<void> {
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

  const services = await createServices(config, { ...deps, log })
  const app = await buildApp(config, services)

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
      await services.stop(SHUTDOWN_GRACE_MS)
      await app.close()
      await services.close()
      log.info('stopped')
      process.exit(0)
    } catch (e) {
      log.error({ err: e }, 'error while shutting down')
      process.exit(1)
    }
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))

  try {
    await app.listen({ host: config.HOST, port: config.PORT })
  } catch (e) {
    const problem = listenProblem(e, config.HOST, config.PORT)
    if (!problem) throw e
    // One line that says what to do; a stack trace would only bury it.
    log.fatal({ host: config.HOST, port: config.PORT, code: (e as NodeJS.ErrnoException).code }, problem)
    await app.close().catch(() => undefined)
    await services.close().catch(() => undefined)
    process.exit(1)
  }
  // After listen: catch-up may take a while, and /health/live and reads must answer meanwhile.
  // The daily job goes on the app's scheduler, so app.close() stops it too.
  await services.scheduler.start(app.scheduler)
}

// Started directly (npm start, node dist/src/server.js), not imported by the CLI or tests.
if (isMainModule(import.meta.url)) {
  await serve(process.env)
}
