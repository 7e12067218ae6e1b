// The JSON body parser: Fastify's own rules (empty and malformed bodies refused with its errors; a
// `__proto__` key, or a `constructor` key holding `prototype`, refused as prototype poisoning), with
// the poisoning scan skipped when the text cannot hold such a key.
//
// Fastify parses with secure-json-parse, which runs JSON.parse and then two regular expressions
// over the whole text looking for either key in any spelling (each character literal or escaped as
// \u00XX). On a 5,000-record ingest body those scans cost as much as JSON.parse itself. A key spelled
// with any escaped character holds one of the escapes \u005…, \u006… or \u007… (`_` and the
// lower-case letters of both names); spelled without one it holds the name literally. A text with
// none of these five substrings (one fast substring search each) holds neither key, and JSON.parse
// alone is exact; any other text goes through secure-json-parse as before.
import { errorCodes, type FastifyInstance } from 'fastify'
import { parse as secureJsonParse } from 'secure-json-parse'

const SUSPECT = ['__proto__', 'constructor', '\\u005', '\\u006', '\\u007'] as const

/** Fastify's default options: a poisoned body is an error (400), never silently cleaned. */
const POISONING = { protoAction: 'error', constructorAction: 'error' } as const

export function parseJsonBody(text: string): unknown {
  for (const suspect of SUSPECT) if (text.includes(suspect)) return secureJsonParse(text, POISONING)
  // secure-json-parse drops a byte-order mark before parsing; so does this path.
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
}

export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string
    if (text.length === 0) return done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY(), undefined)
    try {
      done(null, parseJsonBody(text))
    } catch {
      done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), undefined)
    }
  })
}
