// From grouped raw sums to priced summary rows (docs/data-model.md#money, docs/data-model.md#the-batch).
// Pure: no I/O, no clock.
import type { DataSource } from '../db/enums.js'
import type { ClientDay, ModelSummary, SummaryValues, UserModelSummary } from '../db/store.js'
import { addMeasures, zeroRawMeasures, type RawMeasures } from '../measures.js'
import { multiplyNano } from '../money.js'
import type { AggregateRow } from '../sources/types.js'

/** Raw sums of a group of records: tokens, requests, raw cost (measures.ts). */
export type Sums = RawMeasures

export interface PriceInputs {
  markupRate: string
  /** Null when the day has no USD/PLN rate yet: PLN stays null, never guessed. */
  usdPln: { rate: string; effective_date: string } | null
  dataSource: DataSource
}

/** Each row is priced from its own raw sum: markup, then PLN, each rounded half-even once. */
export function price(sums: Sums, inputs: PriceInputs): SummaryValues {
  const markup = multiplyNano(sums.raw_cost_nano_usd, inputs.markupRate)
  // Spelled out rather than spread: the batch prices every row of a day.
  return {
    total_tokens: sums.total_tokens,
    input_tokens: sums.input_tokens,
    output_tokens: sums.output_tokens,
    total_requests: sums.total_requests,
    raw_cost_nano_usd: sums.raw_cost_nano_usd,
    markup_cost_nano_usd: markup,
    markup_cost_nano_pln: inputs.usdPln ? multiplyNano(markup, inputs.usdPln.rate) : null,
    markup_rate: inputs.markupRate,
    exchange_rate_usd_pln: inputs.usdPln?.rate ?? null,
    exchange_rate_date: inputs.usdPln?.effective_date ?? null,
    data_source: inputs.dataSource,
  }
}

export interface Group {
  external_user: string
  model: string
  sums: Sums
}

/** Per client: user → model → group. Nested maps keep the key exact without building key strings. */
export type ClientGroups = Map<string, Map<string, Map<string, Group>>>

/** Groups aggregate rows by client and (user, model), merging rows that share a key. */
export function groupByClient(rows: Iterable<AggregateRow>): ClientGroups {
  const clients: ClientGroups = new Map()
  for (const r of rows) addToGroups(clients, r)
  return clients
}

/** Adds one aggregate row to the groups, so a streamed result is grouped as it arrives. */
export function addToGroups(clients: ClientGroups, r: AggregateRow): void {
  let users = clients.get(r.client_org_id)
  if (!users) {
    users = new Map()
    clients.set(r.client_org_id, users)
  }
  let models = users.get(r.external_user)
  if (!models) {
    models = new Map()
    users.set(r.external_user, models)
  }
  // Sources may yield the same key twice (e.g. a missing tag and an explicit 'unknown'): sum them.
  const g = models.get(r.model)
  if (!g) {
    models.set(r.model, { external_user: r.external_user, model: r.model, sums: addMeasures(zeroRawMeasures(), r) })
    return
  }
  addMeasures(g.sums, r)
}

/** Every (user, model) group of one client's grouped rows. */
export function* groupsOf(users: Map<string, Map<string, Group>>): Generator<Group> {
  for (const models of users.values()) yield* models.values()
}

/** Builds the user×model, model and client rows of one client's day. */
export function buildClientDay(
  clientOrgId: string,
  groups: Iterable<Group>,
  inputs: PriceInputs,
): ClientDay {
  const users: UserModelSummary[] = []
  const modelSums = new Map<string, Sums>()
  const userNames = new Set<string>()
  const clientSums = zeroRawMeasures()
  for (const g of groups) {
    const row = price(g.sums, inputs) as UserModelSummary
    row.external_user = g.external_user
    row.model = g.model
    users.push(row)
    let m = modelSums.get(g.model)
    if (!m) {
      m = zeroRawMeasures()
      modelSums.set(g.model, m)
    }
    addMeasures(m, g.sums)
    addMeasures(clientSums, g.sums)
    userNames.add(g.external_user)
  }
  const models: ModelSummary[] = [...modelSums].map(([model, sums]) => ({ model, ...price(sums, inputs) }))
  return {
    client_org_id: clientOrgId,
    users,
    models,
    client: { ...price(clientSums, inputs), primary_model: primaryModel(modelSums), unique_users: userNames.size },
  }
}

/** The model with the most tokens; ties broken by name (alphabetically first wins). */
export function primaryModel(modelSums: Map<string, Sums>): string {
  let best: string | undefined
  let bestTokens = -1
  for (const [model, sums] of modelSums) {
    if (sums.total_tokens > bestTokens || (sums.total_tokens === bestTokens && best !== undefined && model < best)) {
      best = model
      bestTokens = sums.total_tokens
    }
  }
  return best ?? ''
}
