// Credentials never leave the process through a message. NBP_API_URL, INFLUXDB_URL and
// ALERT_WEBHOOK_URL may carry them (user:password@, ?token=…, InfluxDB 1.x's ?u=…&p=…), and
// errors quote URLs verbatim (undici: "Request cannot be constructed from a URL that includes
// credentials: http://user:pass@…"). Everything that reaches a log line, a health detail, the run
// ledger or a response body goes through redactText.

export const REDACTED = '[redacted]'

/** Query parameter names whose values are credentials (InfluxDB 1.x takes `u` and `p`). */
const SECRET_PARAM = /^(u|p)$|token|key|secret|pass|pwd|auth|sig|credential|session|jwt|code/i

/** scheme://authority path?query#fragment, the authority ending at the first '/', '?' or '#'. */
const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/is

/**
 * The URL with its userinfo replaced by `[redacted]` and the values of credential-like query
 * parameters too. Everything else is kept as written, so the message still says where it went.
 */
export function redactUrl(url: string): string {
  const m = URL_PARTS.exec(url)
  if (!m) return url
  const [, scheme, authority, path, query, fragment] = m as unknown as [string, string, string, string, string | undefined, string | undefined]
  // The last '@' ends the userinfo (a password may hold a raw '@' that a client never escaped).
  const at = authority.lastIndexOf('@')
  const host = at >= 0 ? `${REDACTED}@${authority.slice(at + 1)}` : authority
  return `${scheme}${host}${path}${query === undefined ? '' : redactQuery(query)}${fragment ?? ''}`
}

function redactQuery(query: string): string {
  return (
    '?' +
    query
      .slice(1)
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=')
        if (eq < 0) return pair
        let name = pair.slice(0, eq)
        try {
          name = decodeURIComponent(name.replace(/\+/g, ' '))
        } catch {
          // A malformed escape: judge the name as written.
        }
        return SECRET_PARAM.test(name) ? `${pair.slice(0, eq)}=${REDACTED}` : pair
      })
      .join('&')
  )
}

/** Anything that looks like an absolute URL inside free text (quotes and brackets end it). */
const URL_IN_TEXT = /[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi

/** Free text (an error message, a warning) with every URL in it passed through redactUrl. */
export function redactText(text: string): string {
  if (!text.includes('://')) return text
  return text.replace(URL_IN_TEXT, redactUrl)
}

const MAX_DEPTH = 6

/**
 * A copy of a JSON-like value with every string redacted. Only plain objects and arrays are
 * walked: a request, a socket or a class instance is passed on untouched (serializers deal with
 * those), so a log call never walks a large object graph.
 */
export function redactDeep<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return redactText(value) as T
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value
  if (Array.isArray(value)) {
    let changed = false
    const out = value.map((v) => {
      const r = redactDeep(v, depth + 1)
      if (r !== v) changed = true
      return r
    })
    return (changed ? out : value) as T
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  let out: Record<string, unknown> | undefined
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const r = redactDeep(v, depth + 1)
    if (r !== v) {
      out ??= { ...(value as Record<string, unknown>) }
      out[k] = r
    }
  }
  return (out ?? value) as T
}
