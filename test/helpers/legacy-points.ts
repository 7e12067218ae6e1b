// Points in the earlier Python system's layout, written straight as line protocol.
import { escapeMeasurement, escapeTag } from '../../src/sources/line-protocol.js'
import type { LegacyPoint } from './source-contract.js'

/** request_id and api_key_hash as TAGS, external_user sometimes absent, ms timestamps. */
export function legacyLines(measurement: string, points: LegacyPoint[]): string {
  return points
    .map((p) => {
      const tags: Array<[string, string]> = [
        ['api_key_hash', p.api_key_hash],
        ['client_org_id', p.client_org_id],
        ...(p.external_user ? [['external_user', p.external_user] as [string, string]] : []),
        ['model', p.model],
        ['request_id', p.request_id],
      ]
      const tagText = tags.map(([k, v]) => `,${k}=${escapeTag(v, k)}`).join('')
      return (
        `${escapeMeasurement(measurement)}${tagText} input_tokens=${p.input_tokens}i,output_tokens=${p.output_tokens}i,` +
        `total_tokens=${p.total_tokens}i,cost_usd=${p.cost_text} ${p.occurred_at_ms}`
      )
    })
    .join('\n')
}
