// Content negotiation over the Accept header (RFC 9110 §12.5.1), for the few media types a route
// offers. Small on purpose: media ranges with q-values, the most specific range decides an offer's
// quality, `q=0` means "not this".

interface MediaRange {
  type: string
  subtype: string
  q: number
  /** Position in the header: among equals, what the client listed first wins. */
  position: number
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i
const QVALUE = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/

/** The header's media ranges; malformed elements are skipped, as if absent. */
export function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = []
  header.split(',').forEach((element, position) => {
    const [mediaRange = '', ...params] = element.split(';').map((p) => p.trim())
    const slash = mediaRange.indexOf('/')
    const type = mediaRange.slice(0, slash).toLowerCase()
    const subtype = mediaRange.slice(slash + 1).toLowerCase()
    if (slash < 0 || !TOKEN.test(type) || !TOKEN.test(subtype) || (type === '*' && subtype !== '*')) return
    let q = 1
    for (const param of params) {
      const eq = param.indexOf('=')
      if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue
      const value = param.slice(eq + 1).trim()
      if (!QVALUE.test(value)) return
      q = Number(value)
    }
    ranges.push({ type, subtype, q, position })
  })
  return ranges
}

/** 2 for type/subtype, 1 for type/*, 0 for * /*; -1 when the range does not cover the type. */
function specificity(range: MediaRange, type: string, subtype: string): number {
  if (range.type === '*') return 0
  if (range.type !== type) return -1
  if (range.subtype === '*') return 1
  return range.subtype === subtype ? 2 : -1
}

/**
 * The offered media type the header prefers, or undefined when it accepts none of them. Each offer
 * takes the quality of the most specific range covering it; ties go to the more specific match,
 * then to the range listed first, then to the order of `offered` (the server's default first).
 */
export function preferredMediaType(header: string | undefined, offered: readonly string[]): string | undefined {
  if (header === undefined || header.trim() === '') return offered[0]
  const ranges = parseAccept(header)
  let best: { offer: string; q: number; specificity: number; position: number; order: number } | undefined
  offered.forEach((offer, order) => {
    const [type = '', subtype = ''] = offer.toLowerCase().split('/')
    let match: { q: number; specificity: number; position: number } | undefined
    for (const range of ranges) {
      const s = specificity(range, type, subtype)
      if (s < 0) continue
      if (!match || s > match.specificity || (s === match.specificity && range.position < match.position)) {
        match = { q: range.q, specificity: s, position: range.position }
      }
    }
    if (!match || match.q === 0) return
    const better =
      !best ||
      match.q > best.q ||
      (match.q === best.q &&
        (match.specificity > best.specificity ||
          (match.specificity === best.specificity && (match.position < best.position || (match.position === best.position && order < best.order)))))
    if (better) best = { offer, ...match, order }
  })
  return best?.offer
}
