// Bytes on disk per raw usage row and per summary row, measured on a real SQLite file filled by the
// service's own ingest (POST /usage/events through the production app) and batch, with identifiers
// as long as the earlier system's (FACTS: `mai_client_63a4eb6d_user_a1b2c3d4`). The figures size
// the Kubernetes volume (README "Sizing the volume"); test/ops/deploy.test.ts re-measures a small
// day so the documented figure cannot silently go stale. Pages are counted with SQLite's dbstat:
// each table with its indexes (the request_id primary key is an index of its own).
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { buildApp } from '../../src/app.js'
import { dayWindow, fixedClock } from '../../src/clock.js'
import { loadConfig } from '../../src/config.js'
import type { SqliteStore } from '../../src/db/sqlite/store.js'
import type { RateProvider } from '../../src/rates/types.js'
import { createServices } from '../../src/services.js'
import { prng } from './data.js'

export interface StorageShape {
  events: number
  clients: number
  usersPerClient: number
  seed: number
}

const PER_REQUEST = 5_000
const DAY = '2026-11-20'
const ZONE = 'Europe/Warsaw'
/** Most users use a few models: each picks from three of these, so user×model rows stay realistic. */
const MODELS = [
  'anthropic/claude-sonnet-4',
  'anthropic/claude-opus-4.1',
  'anthropic/claude-3.5-haiku',
  'openai/gpt-4o-mini',
  'openai/gpt-4.1',
  'openai/o4-mini',
  'google/gemini-2.5-pro',
  'google/gemini-2.5-flash',
  'meta-llama/llama-3.3-70b-instruct',
  'mistralai/mistral-large-2411',
  'deepseek/deepseek-chat-v3.1',
  'qwen/qwen3-235b-a22b',
]

export async function measureStorage(shape: StorageShape) {
  const random = prng(shape.seed)
  const hex = (digits: number) => Array.from({ length: digits }, () => Math.floor(random() * 16).toString(16)).join('')
  const base62 = (n: number) =>
    Array.from({ length: n }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(random() * 62)]).join('')
  const clients = Array.from({ length: shape.clients }, () => `mai_client_${hex(8)}`)
  const users = clients.map((c) =>
    Array.from({ length: shape.usersPerClient }, () => ({
      name: `${c}_user_${hex(8)}`,
      models: [0, 1, 2].map(() => MODELS[Math.floor(random() * MODELS.length)]!),
    })),
  )

  const dir = mkdtempSync(join(tmpdir(), 'usage-batch-storage-'))
  try {
    const path = join(dir, 'usage.db')
    const window = dayWindow(DAY, ZONE)
    const clock = fixedClock(window.endMs + 13 * 3_600_000)
    const config = loadConfig({ SQLITE_PATH: path, BATCH_SCHEDULER_ENABLED: 'false', LOG_LEVEL: 'silent', RAW_RETENTION_DAYS: '0' })
    // A fixed rate so that PLN is stored as in production (no NBP from here).
    const rates: RateProvider = {
      resolveUsdPlnRate: async (usage_date) => ({
        ok: true,
        rate: {
          usage_date,
          rate: '4.0341',
          effective_date: DAY,
          table_no: '226/A/NBP/2026',
          source: 'nbp',
          policy: 'previous-business-day',
          fetched_at: new Date(clock.now()).toISOString(),
        },
      }),
    }
    const services = await createServices(config, { log: pino({ level: 'silent' }), clock, rates })
    const { db } = services.store as SqliteStore
    const app = await buildApp(config, services)
    await app.ready()
    try {
      const started = Date.now()
      for (let sent = 0; sent < shape.events; sent += PER_REQUEST) {
        const events = []
        for (let i = sent; i < Math.min(shape.events, sent + PER_REQUEST); i++) {
          const c = Math.floor(random() * shape.clients)
          const user = users[c]![Math.floor(random() * shape.usersPerClient)]!
          const input = 50 + Math.floor(random() * 4000)
          const output = 20 + Math.floor(random() * 1500)
          events.push({
            // OpenRouter's generation id shape: gen-<epoch s>-<20 characters>.
            request_id: `gen-${Math.floor(window.startMs / 1000) + Math.floor(i / 12)}-${base62(20)}`,
            client_org_id: clients[c],
            model: user.models[Math.floor(random() * 3)],
            external_user: user.name,
            input_tokens: input,
            output_tokens: output,
            cost_usd: ((input * 3 + output * 15) / 1_000_000).toFixed(9),
            timestamp: new Date(window.startMs + Math.floor(random() * (window.endMs - window.startMs))).toISOString(),
          })
        }
        const res = await app.inject({ method: 'POST', url: '/usage/events', payload: { events } })
        if (res.statusCode !== 200) throw new Error(`ingest answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
      }
      const ingestMs = Date.now() - started
      const run = await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { date: DAY } })
      const [summary] = run.json().runs as Array<{ status: string }>
      if (summary?.status !== 'succeeded') throw new Error(`batch: ${run.body}`)

      const conn = db.$client
      conn.pragma('wal_checkpoint(TRUNCATE)')
      const bytesOf = (table: string) =>
        conn
          .prepare<[string, string], { bytes: number }>(
            "SELECT coalesce(sum(pgsize), 0) AS bytes FROM dbstat WHERE name = ? OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?)",
          )
          .get(table, table)!.bytes
      const rowsOf = (table: string) => conn.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()!.n
      const raw = { rows: rowsOf('usage_events'), bytes: bytesOf('usage_events') }
      const summaryTables = ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage'].map((name) => ({
        name,
        rows: rowsOf(name),
        bytes: bytesOf(name),
      }))
      const summaryRows = summaryTables.reduce((n, s) => n + s.rows, 0)
      const summaryBytes = summaryTables.reduce((n, s) => n + s.bytes, 0)
      return {
        ...shape,
        users: shape.clients * shape.usersPerClient,
        ingest_ms: ingestMs,
        raw_rows: raw.rows,
        raw_bytes: raw.bytes,
        raw_bytes_per_row: Math.round(raw.bytes / raw.rows),
        summary_tables: summaryTables,
        summary_rows: summaryRows,
        summary_bytes_per_row: Math.round(summaryBytes / summaryRows),
        file_bytes: statSync(path).size,
        page_size: conn.pragma('page_size', { simple: true }) as number,
      }
    } finally {
      await app.close()
      await services.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
