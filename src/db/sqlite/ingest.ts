// Storing ingested records in the SQLite file: one IMMEDIATE transaction per call, with the conflict
// and void checks (docs/data-model.md#the-raw-record). Run on the store's writer connection, or on
// the ingest writer's own connection in its worker thread (ingest-writer.ts); so it imports nothing
// but better-sqlite3's types and the record rules.
import type Database from 'better-sqlite3'
import { differingFields, usageEventOf, type EventConflict, type UsageEvent } from '../../usage-event.js'
import type { IngestOutcome } from '../store.js'

/** Stores one record, values by position; a request_id already stored is left as it is (the caller compares contents). */
export const INSERT_EVENT_SQL = `
  INSERT INTO usage_events (request_id, client_org_id, model, external_user, input_tokens, output_tokens,
                            total_tokens, cost_nano_usd, occurred_at, received_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (request_id) DO NOTHING`

/** The columns of a usage_events row as UsageEvent names them. */
export const STORED_COLUMNS = `request_id, client_org_id, model, external_user, input_tokens, output_tokens, total_tokens,
  cost_nano_usd, occurred_at AS occurred_at_ms, received_at AS received_at_ms`

/** A usage_events row read with safeIntegers: every integer a bigint. */
export interface RawStored {
  request_id: string
  client_org_id: string
  model: string
  external_user: string
  input_tokens: bigint
  output_tokens: bigint
  total_tokens: bigint
  cost_nano_usd: bigint
  occurred_at_ms: bigint
  received_at_ms: bigint
}

/** Carries an ingest's conflicts out of the transaction it rolls back. */
class RefusedIngest extends Error {
  constructor(readonly conflicts: EventConflict[]) {
    super('ingest refused')
  }
}

/**
 * The ingest of connection `c`: stores the new records; a record whose request_id is stored with
 * other content, or voided, refuses the whole call (the transaction rolls back) with every
 * conflicting index. Prepared on the first call.
 */
export function createIngest(c: Database.Database): (events: readonly UsageEvent[], receivedAtMs: number) => IngestOutcome {
  function prepare() {
    // Positional parameters: ingestion binds ten values per record, and binding by position spares
    // better-sqlite3 a property lookup by name for each (and the record a copy to add received_at).
    const insertEvent = c.prepare(INSERT_EVENT_SQL)
    const storedEvent = c.prepare(`SELECT ${STORED_COLUMNS} FROM usage_events WHERE request_id = ?`).safeIntegers(true)
    const anyVoid = c.prepare('SELECT EXISTS (SELECT 1 FROM usage_event_voids)').pluck()
    const voidedAmong = c
      .prepare('SELECT request_id, reason, voided_at AS voided_at_ms FROM usage_event_voids WHERE request_id IN (SELECT value FROM json_each(?))')
      .safeIntegers(true)
    return c.transaction((events: readonly UsageEvent[], receivedAt: number): IngestOutcome => {
      let accepted = 0
      const conflicts: EventConflict[] = []
      // Voids are rare: one probe per call spares the lookup while there are none; when there are,
      // the call's ids are looked up in one statement rather than one per record.
      const voided =
        anyVoid.get() === 1
          ? new Map(
              (voidedAmong.all(JSON.stringify(events.map((e) => e.request_id))) as Array<{ request_id: string; reason: string; voided_at_ms: bigint }>).map(
                (v) => [v.request_id, v],
              ),
            )
          : undefined
      events.forEach((e, index) => {
        const isVoided = voided?.get(e.request_id)
        if (isVoided) {
          conflicts.push({
            index,
            field: 'request_id',
            message: `was voided on ${new Date(Number(isVoided.voided_at_ms)).toISOString()} (${isVoided.reason}); a voided request_id cannot be ingested again`,
          })
          return
        }
        const changes = insertEvent.run(
          e.request_id,
          e.client_org_id,
          e.model,
          e.external_user,
          e.input_tokens,
          e.output_tokens,
          e.total_tokens,
          e.cost_nano_usd,
          e.occurred_at_ms,
          receivedAt,
        ).changes
        if (changes === 1) {
          accepted += 1
          return
        }
        const differing = differingFields(usageEventOf(storedEvent.get(e.request_id) as RawStored), e)
        if (differing.length > 0) conflicts.push({ index, field: 'request_id', message: `already stored with different ${differing.join(', ')}` })
      })
      // Throwing rolls the transaction back; the outcome is rebuilt from the error below.
      if (conflicts.length > 0) throw new RefusedIngest(conflicts)
      return { accepted, conflicts }
    })
  }
  let insertAll: ReturnType<typeof prepare> | undefined
  return (events, receivedAtMs) => {
    try {
      // IMMEDIATE: the call reads (voids, stored duplicates) before it writes, and a write committed
      // by another connection in between would fail a deferred transaction's upgrade at once.
      return (insertAll ??= prepare()).immediate(events, receivedAtMs)
    } catch (e) {
      if (e instanceof RefusedIngest) return { accepted: 0, conflicts: e.conflicts }
      throw e
    }
  }
}
