// Test data written straight into SQLite (one transaction), for days large enough to take a while.
import { copyFileSync } from 'node:fs'
import { dayWindow } from '../../src/clock.js'
import { openDb, type Db } from '../../src/db/sqlite/open.js'

export interface LargeDayShape {
  clients: number
  users: number
  models: number
  /** Events per (client, user, model) group. */
  perGroup: number
}

export const LARGE_DAY: LargeDayShape = { clients: 40, users: 40, models: 5, perGroup: 20 }

/** Inserts a deterministic day of events into an (already migrated) database; returns the event count. */
export function insertDay(db: Db, date: string, shape: LargeDayShape, tag = date): number {
  const window = dayWindow(date, 'Europe/Warsaw')
  const span = window.endMs - window.startMs
  const insert = db.$client.prepare(
    `INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens,
                               total_tokens, cost_nano_usd, occurred_at, received_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
  let n = 0
  db.$client.transaction(() => {
    for (let c = 0; c < shape.clients; c++) {
      for (let u = 0; u < shape.users; u++) {
        for (let m = 0; m < shape.models; m++) {
          for (let i = 0; i < shape.perGroup; i++) {
            n += 1
            const input = 10 + ((n * 7) % 1000)
            const output = 3 + ((n * 13) % 500)
            const at = window.startMs + ((n * 7919) % span)
            insert.run(`${tag}-${n}`, `client_${c}`, `vendor/model-${m}`, `user_${u}`, input, output, input + output, 1 + ((n * 104729) % 9_999_999), at, at)
          }
        }
      }
    }
  })()
  return n
}

/** Creates and migrates a database file, fills it with `fill`, closes it (checkpointing the WAL). */
export function prepareDatabase(path: string, fill: (db: Db) => void): void {
  const db = openDb({ path })
  try {
    fill(db)
  } finally {
    db.$client.close()
  }
}

/** A byte copy of a closed database: the same raw data for a clean reference run. */
export function copyDatabase(from: string, to: string): void {
  copyFileSync(from, to)
}

const VOLATILE = new Set(['id', 'batch_run_id', 'created_at', 'updated_at'])

/** Summary rows of a date in every summary table, without the columns that differ between runs. */
export function stableSummaries(db: Db, date: string): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {}
  for (const table of ['client_daily_usage', 'client_user_daily_usage', 'client_model_daily_usage']) {
    const rows = db.$client.prepare(`SELECT * FROM "${table}" WHERE usage_date = ?`).all(date) as Record<string, unknown>[]
    out[table] = rows
      .map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !VOLATILE.has(k))))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
  }
  return out
}

export function summaryCount(db: Db, date: string): number {
  const s = stableSummaries(db, date)
  return Object.values(s).reduce((n, rows) => n + rows.length, 0)
}
