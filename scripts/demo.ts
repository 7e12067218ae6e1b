// npm run demo: a deterministic week of synthetic usage on the embedded default, batched and shown.
// It goes through the same HTTP routes a producer and an admin would use (in-process, no port).
import { rmSync } from 'node:fs'
import pino from 'pino'
import { buildApp } from '../src/app.js'
import { addDays, datesInRange, fixedClock, localTimeToInstant } from '../src/clock.js'
import { loadConfig } from '../src/config.js'
import { createServices } from '../src/services.js'
// The benchmark's seeded PRNG (mulberry32), so every demo run prints the same table.
import { prng } from '../bench/lib/data.js'

// The week ending on the autumn DST change (2026-10-25 has 25 hours in Warsaw).
const FROM = '2026-10-19'
const TO = '2026-10-25'
const NOW_MS = Date.parse('2026-10-26T12:00:00Z')
const CLIENTS = ['acme-corp', 'globex', 'initech']
const MODELS: Array<[string, number]> = [
  // model, USD per 1k tokens (input and output alike, for the demo)
  ['anthropic/claude-sonnet-4', 0.009],
  ['openai/gpt-4o-mini', 0.00015],
  ['google/gemini-2.5-flash', 0.0003],
  ['meta-llama/llama-3.1-8b-instruct', 0.00002],
]

async function main(): Promise<void> {
  const path = process.env.DEMO_SQLITE_PATH ?? './data/demo.db'
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
  // The real NBP API (NBP_API_URL): with internet access the PLN column is filled at the legal rate;
  // without it PLN stays empty and each run says why — a rate is never made up.
  const config = loadConfig({ SQLITE_PATH: path, LOG_LEVEL: 'silent', BATCH_SCHEDULER_ENABLED: 'false', NBP_TIMEOUT_MS: '5000', NBP_MAX_RETRIES: '1' })
  const services = await createServices(config, { log: pino({ level: 'silent' }), clock: fixedClock(NOW_MS) })
  const app = await buildApp(config, services)

  const random = prng(20261025)
  const events: object[] = []
  for (const date of datesInRange(FROM, TO)) {
    const start = localTimeToInstant(date, 0, 0, config.BUSINESS_TIMEZONE)
    const end = localTimeToInstant(addDays(date, 1), 0, 0, config.BUSINESS_TIMEZONE)
    CLIENTS.forEach((client, c) => {
      const perDay = 40 + Math.floor(random() * 60) * (c + 1)
      for (let i = 0; i < perDay; i++) {
        const [model, usdPer1k] = MODELS[Math.floor(random() ** (c + 1) * MODELS.length)]!
        const input = 50 + Math.floor(random() * 4000)
        const output = 20 + Math.floor(random() * 1500)
        const cost = ((input + output) / 1000) * usdPer1k
        events.push({
          request_id: `demo-${date}-${client}-${i}`,
          client_org_id: client,
          model,
          // Some requests come without a user: they are kept as `unknown`.
          external_user: random() < 0.05 ? undefined : `${client}-user-${1 + Math.floor(random() * (3 + c * 2))}`,
          input_tokens: input,
          output_tokens: output,
          // Producers send float noise; the service rounds it half-even to nano-USD on ingest.
          cost_usd: cost,
          timestamp: new Date(start + Math.floor(random() * (end - start))).toISOString(),
        })
      }
    })
  }
  for (let i = 0; i < events.length; i += 5000) {
    const res = await app.inject({ method: 'POST', url: '/usage/events', payload: { events: events.slice(i, i + 5000) } })
    if (res.statusCode !== 200) throw new Error(`ingest failed: ${res.body}`)
  }
  const run = await app.inject({ method: 'POST', url: '/batch/run?wait=true', payload: { from: FROM, to: TO } })
  if (run.statusCode !== 200) throw new Error(`batch failed: ${run.body}`)
  const runs = run.json().runs as Array<{ processing_date: string; status: string; records_processed: number; warnings: string[] }>

  const rows: string[][] = [['date', 'client', 'requests', 'tokens', 'raw USD', 'markup USD', 'PLN', 'primary model', 'users']]
  for (const client of CLIENTS) {
    const daily = await app.inject({ url: `/usage/clients/${client}/daily?from=${FROM}&to=${TO}` })
    for (const d of daily.json().days) {
      rows.push([
        d.usage_date,
        client,
        String(d.total_requests),
        String(d.total_tokens),
        d.raw_cost_usd.toFixed(9),
        d.markup_cost_usd.toFixed(9),
        d.markup_cost_pln === null ? '—' : d.markup_cost_pln.toFixed(9),
        d.primary_model,
        String(d.unique_users),
      ])
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((cell, i) => (i >= 2 && i <= 6 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ')
  console.log(`usage-batch demo: ${events.length} synthetic events, ${FROM} … ${TO} (${config.BUSINESS_TIMEZONE}; ${TO} has 25 hours)\n`)
  console.log(line(rows[0]!))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows.slice(1)) console.log(line(r))
  console.log('\nruns:')
  for (const r of runs) console.log(`  ${r.processing_date}  ${r.status}  records=${r.records_processed}  ${r.warnings.join('; ')}`)
  console.log(`\ndatabase: ${path} (recreated on every demo run)`)
  await app.close()
  await services.close()
}

await main()
