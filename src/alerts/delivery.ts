// Webhook delivery: a JSON POST with a Slack-compatible `text` and a structured body, retried with
// exponential backoff. Never throws: a failed delivery is logged and reported through a callback.
import type { Logger } from 'pino'
import type { AlertKind } from '../db/enums.js'
import { redactText } from '../redact.js'

export interface Alert {
  kind: AlertKind
  /** The usage date the condition is about. */
  date: string
  client_org_id?: string
  /** One line for people (Slack shows it). */
  text: string
  details: Record<string, unknown>
}

/** The key that makes one alert per condition: kind, usage date, client. */
export function alertKey(alert: Pick<Alert, 'kind' | 'date' | 'client_org_id'>): string {
  return [alert.kind, alert.date, alert.client_org_id ?? ''].join('|')
}

export interface DeliveryOptions {
  url: string
  log: Logger
  /** Attempts in all, the first included (default DEFAULT_MAX_ATTEMPTS). */
  maxAttempts?: number
  /** Wait before the second attempt; doubles each time (default DEFAULT_BASE_DELAY_MS). */
  baseDelayMs?: number
  /** Per-attempt timeout (default DEFAULT_TIMEOUT_MS). */
  timeoutMs?: number
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>
  fetch?: typeof fetch
}

export interface DeliveryResult {
  ok: boolean
  attempts: number
  /** Last HTTP status or error message when not ok. */
  error?: string
}

const DEFAULT_MAX_ATTEMPTS = 5
const DEFAULT_BASE_DELAY_MS = 1_000
const DEFAULT_TIMEOUT_MS = 10_000

export function webhookBody(alert: Alert) {
  return {
    text: alert.text,
    kind: alert.kind,
    date: alert.date,
    ...(alert.client_org_id !== undefined ? { client_org_id: alert.client_org_id } : {}),
    details: alert.details,
  }
}

/** Posts one alert, retrying network errors, timeouts, 429 and 5xx; other 4xx are final. */
export async function deliverAlert(options: DeliveryOptions, alert: Alert): Promise<DeliveryResult> {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS
  const baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const doFetch = options.fetch ?? fetch
  const body = JSON.stringify(webhookBody(alert))
  let error = ''
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    let retryable = true
    try {
      const res = await doFetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      })
      // Drain the body so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined)
      if (res.ok) return { ok: true, attempts: attempt }
      error = `HTTP ${res.status}`
      retryable = res.status === 429 || res.status >= 500
    } catch (e) {
      // A fetch error may quote the URL, which is a secret as a whole (a Slack webhook's path is its credential).
      error = redactText((e as Error).message.replaceAll(options.url, '[ALERT_WEBHOOK_URL]'))
    }
    // The URL is a secret (a Slack webhook is a bearer credential): never log it.
    options.log.warn({ kind: alert.kind, day: alert.date, attempt, error }, 'alert delivery attempt failed')
    if (!retryable || attempt === maxAttempts) return { ok: false, attempts: attempt, error }
    await sleep(baseDelayMs * 2 ** (attempt - 1))
  }
  return { ok: false, attempts: maxAttempts, error }
}
