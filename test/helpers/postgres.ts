// A throwaway real PostgreSQL (Debian's postgresql 15) on a free loopback port, in a temp folder.
// One server per test process (tap runs each file in its own process), a fresh database per test.
//
// Costs measured on the 2-core test machine: initdb plus start 0.9 s when it is idle (2-2.6 s under
// the load of a full test run); a fresh database (CREATE DATABASE … TEMPLATE, a file copy) ~0.1 s,
// migrated or not.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { openPostgres } from '../../src/db/postgres/open.js'
import { freePort } from './ports.js'

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication, loopback only). */
  readonly url: string
  readonly port: number
  /** The temp folder holding the cluster (data/) and its socket; gone after destroy(). */
  readonly dir: string
  /** The URL of another database on this server. */
  urlFor(database: string): string
  /** Runs one statement as the superuser on the `postgres` database. */
  admin(statement: string, params?: unknown[]): Promise<pg.QueryResult>
  /** Stops the server (fast shutdown: open sessions are cut). Its data stays for `start()`. */
  stop(): Promise<void>
  /** Starts it again on the same port and data. */
  start(): Promise<void>
  /** Stops it and deletes its folder. */
  destroy(): Promise<void>
}

interface TapLike {
  teardown(fn: () => unknown): void
}

const STARTUP_TIMEOUT_MS = 30_000
const DEFAULT_BIN_DIR = '/usr/lib/postgresql/15/bin'

/** POSTGRES_BIN_DIR, else Debian's PostgreSQL 15. */
function binDir(): string | undefined {
  const dir = process.env.POSTGRES_BIN_DIR ?? DEFAULT_BIN_DIR
  return existsSync(join(dir, 'postgres')) && existsSync(join(dir, 'initdb')) ? dir : undefined
}

/** PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'))
  if (!line) return undefined
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}

/**
 * Why PostgreSQL cannot be started here, or undefined when it can. With REQUIRE_POSTGRES=1 (CI)
 * a missing server is an error, so that a broken CI image cannot turn the PostgreSQL suite into skips.
 */
export function postgresUnavailable(): string | undefined {
  let reason: string | undefined
  if (!binDir()) reason = `PostgreSQL binaries not found in ${process.env.POSTGRES_BIN_DIR ?? DEFAULT_BIN_DIR} (apt-get install -y postgresql)`
  else if (process.getuid?.() === 0 && !serverIdentity()) reason = 'running as root without a `postgres` system user to run the server as'
  if (!reason) return undefined
  if (process.env.REQUIRE_POSTGRES === '1') throw new Error(`REQUIRE_POSTGRES=1 but ${reason}`)
  console.log(`SKIP: ${reason}`)
  return reason
}


/**
 * Initialises a cluster in a fresh temp folder and starts it on a free loopback port. Not tied to
 * tap: the benchmark uses it too. Whatever happens to this process (even SIGKILL), the server
 * stops and its folder goes: a watchdog shell holds a pipe from this process and, when the pipe
 * closes, shuts the server down and removes the folder.
 */
export async function launchPostgres(): Promise<PostgresServer> {
  const bin = binDir()
  if (!bin) throw new Error('PostgreSQL binaries not found')
  const identity = serverIdentity()
  const dir = mkdtempSync(join(tmpdir(), 'postgres-'))
  if (identity) chownSync(dir, identity.uid, identity.gid)
  const data = join(dir, 'data')
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], {
    ...identity,
    encoding: 'utf8',
  })
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.error?.message}`)
  }
  const port = await freePort()
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const urlFor = (database: string) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`

  let child: ChildProcess | undefined
  let watchdog: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let log = ''

  const start = async () => {
    // fsync off: a test cluster never outlives a crash of its machine. max_connections covers
    // several pools at once (replica tests); the small shared_buffers keeps many servers cheap.
    const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`]
    args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200')
    args.push('-c', 'shared_buffers=32MB', '-c', 'log_min_messages=warning', '-c', 'logging_collector=off')
    const server = spawn(join(bin, 'postgres'), args, { ...identity, stdio: ['ignore', 'ignore', 'pipe'] })
    child = server
    log = ''
    server.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4_000)
    })
    let running = true
    exited = new Promise<void>((resolve) =>
      server.once('exit', () => {
        running = false
        resolve()
      }),
    )
    // SIGINT is PostgreSQL's fast shutdown. The watchdog's stdin is a pipe only this process writes
    // to: `read` returns when it closes, i.e. when stop() ends it or when this process dies.
    watchdog = spawn(
      'sh',
      ['-c', 'read _; kill -INT "$1" 2>/dev/null; while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; rm -rf "$2"', 'watchdog', String(server.pid), dir],
      { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
    )
    watchdog.unref()
    ;(watchdog.stdin as unknown as { unref(): void }).unref()

    const deadline = Date.now() + STARTUP_TIMEOUT_MS
    for (;;) {
      if (!running) throw new Error(`postgres exited during startup:\n${log}`)
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 })
      try {
        await client.connect()
        await client.query('SELECT 1')
        await client.end()
        break
      } catch {
        await client.end().catch(() => {})
      }
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${STARTUP_TIMEOUT_MS} ms:\n${log}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT')
      await exited
    }
    // The server is down: let the watchdog end without removing the folder (a restart follows).
    watchdog?.kill('SIGKILL')
    watchdog = undefined
  }

  const admin = async (statement: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      return await client.query(statement, params)
    } finally {
      await client.end()
    }
  }

  const destroy = async () => {
    await stop()
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    await start()
  } catch (e) {
    await destroy()
    throw e
  }
  return { url, port, dir, urlFor, admin, stop, start, destroy }
}

/** A server for this test (or file): started now, destroyed at `t`'s teardown. */
export async function startPostgres(t: TapLike): Promise<PostgresServer> {
  const server = await launchPostgres()
  t.teardown(() => server.destroy())
  return server
}

let shared: Promise<PostgresServer> | undefined

/**
 * The process's shared server, started on first use and destroyed when `root` (the file's tap
 * object) ends. Tests that stop or restart the server take their own with startPostgres.
 */
export function sharedPostgres(root: TapLike): Promise<PostgresServer> {
  if (!shared) {
    shared = launchPostgres()
    root.teardown(async () => (await shared!).destroy())
  }
  return shared
}

let databaseCounter = 0

/**
 * A fresh, empty database on `server` for one test, dropped at its teardown. `template` copies a
 * prepared database instead (e.g. one already migrated), which is as cheap as an empty one.
 */
export async function createDatabase(t: TapLike, server: PostgresServer, template = 'template0'): Promise<string> {
  databaseCounter += 1
  const name = `test_${process.pid}_${databaseCounter}`
  await server.admin(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}`)
  t.teardown(async () => {
    await server.admin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`).catch(() => {})
  })
  return server.urlFor(name)
}

const migratedTemplates = new WeakMap<PostgresServer, Promise<string>>()

/**
 * A fresh database with every migration applied, copied from a template migrated once per server:
 * a migrated database costs what an empty one does.
 */
export async function createMigratedDatabase(t: TapLike, server: PostgresServer): Promise<string> {
  let template = migratedTemplates.get(server)
  if (!template) {
    template = (async () => {
      const name = 'usage_migrated_template'
      await server.admin(`CREATE DATABASE ${name} TEMPLATE template0`)
      const db = await openPostgres({ url: server.urlFor(name) })
      await db.$client.end()
      return name
    })()
    migratedTemplates.set(server, template)
  }
  return createDatabase(t, server, await template)
}
