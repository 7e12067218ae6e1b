// Shared TypeBox pieces of the HTTP contract (docs/api.md). JSON field names here are the contract.
import { Type, type Static } from 'typebox'
import { MAX_DATE, MIN_DATE } from '../clock.js'
import { DATA_SOURCES, RUN_STATUSES, RUN_TRIGGERS } from '../db/enums.js'

export const DateString = Type.String({ format: 'date', description: `A calendar date, YYYY-MM-DD, from ${MIN_DATE} to ${MAX_DATE}`, examples: ['2026-11-27'] })

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          index: Type.Optional(Type.Integer({ description: 'Position of the offending item in a list body' })),
          field: Type.String(),
          message: Type.String(),
        }),
      ),
    ),
  },
  { title: 'ErrorResponse', description: 'Every error: a status code, its name and a readable message' },
)
export type ErrorBody = Static<typeof ErrorResponse>

export const Run = Type.Object(
  {
    id: Type.Integer(),
    processing_date: DateString,
    trigger: Type.Enum([...RUN_TRIGGERS]),
    status: Type.Enum([...RUN_STATUSES]),
    started_at: Type.String({ format: 'date-time' }),
    finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    duration_ms: Type.Union([Type.Integer(), Type.Null()]),
    data_source: Type.Enum([...DATA_SOURCES]),
    clients_processed: Type.Integer(),
    records_processed: Type.Integer({ description: 'Raw records aggregated' }),
    summaries_written: Type.Integer({ description: 'Summary rows of the day after the run (all three tables)' }),
    data_corrections: Type.Integer({ description: 'Summary rows added, changed or removed compared with the previous run of the date' }),
    exchange_rate_usd_pln: Type.Union([Type.Number(), Type.Null()]),
    warnings: Type.Array(Type.String()),
    error_message: Type.Union([Type.String(), Type.Null()]),
  },
  { title: 'Run', description: 'One batch run of one usage date' },
)

export const RunWithErrors = Type.Object(
  {
    ...Run.properties,
    errors: Type.Array(Type.Object({ client_org_id: Type.String(), error: Type.String() }), {
      description: 'Per-client errors of the run',
    }),
  },
  { title: 'RunWithErrors' },
)
export type RunBody = Static<typeof Run>

export const ClientIdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 200, description: 'client_org_id' }),
})

export const DateRangeQuery = {
  from: Type.Optional(DateString),
  to: Type.Optional(DateString),
}
