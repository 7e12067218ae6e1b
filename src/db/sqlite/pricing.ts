// Per-client markup history (`client_pricing`). A day is priced with the entry in force on it.
import { and, asc, eq, lte } from '../drizzle.js'
import type { Db } from './open.js'
import { clientPricing, type ClientPricingRow } from '../schema.js'
import type { PricingEntryInput } from '../store.js'

export function pricingHistory(db: Db, clientOrgId: string): ClientPricingRow[] {
  return db
    .select()
    .from(clientPricing)
    .where(eq(clientPricing.client_org_id, clientOrgId))
    .orderBy(asc(clientPricing.effective_from))
    .all()
}

/** Appends an entry; false when the client already has one for that effective date. */
export function appendPricing(
  db: Db,
  entry: PricingEntryInput,
): ClientPricingRow | undefined {
  return db.insert(clientPricing).values(entry).onConflictDoNothing().returning().get()
}

/** The markup in force for (client, date): the latest entry effective on or before the date, else the default. */
export function markupInForce(db: Db, clientOrgId: string, date: string, defaultRate: string): string {
  const row = db
    .select({ markup_rate: clientPricing.markup_rate })
    .from(clientPricing)
    .where(and(eq(clientPricing.client_org_id, clientOrgId), lte(clientPricing.effective_from, date)))
    .orderBy(clientPricing.effective_from)
    .all()
    .at(-1)
  return row?.markup_rate ?? defaultRate
}

/** markupInForce for every client with an entry on or before the date, in one query (for the batch). */
export function markupsInForce(db: Db, date: string): Map<string, string> {
  const rows = db
    .select({ client_org_id: clientPricing.client_org_id, markup_rate: clientPricing.markup_rate })
    .from(clientPricing)
    .where(lte(clientPricing.effective_from, date))
    .orderBy(asc(clientPricing.effective_from))
    .all()
  const byClient = new Map<string, string>()
  // Ascending by effective date: the last write per client is the entry in force.
  for (const r of rows) byClient.set(r.client_org_id, r.markup_rate)
  return byClient
}
