import { Type } from 'typebox'
import { RUN_STATUSES } from '../db/enums.js'
import { DateString, Run } from './common.js'

export const RunRequestBody = Type.Object(
  {
    date: Type.Optional(DateString),
    from: Type.Optional(DateString),
    to: Type.Optional(DateString),
  },
  {
    additionalProperties: false,
    description: 'One date, or an inclusive range from/to; empty means yesterday (business time zone)',
    examples: [{ date: '2026-11-27' }, { from: '2026-11-01', to: '2026-11-27' }],
  },
)

export const RunRequestQuery = Type.Object(
  { wait: Type.Optional(Type.Boolean({ default: false, description: 'Answer only when every run has finished' })) },
  { additionalProperties: false },
)

export const RunsResponse = Type.Object({ runs: Type.Array(Run) })

export const ListRunsQuery = Type.Object(
  {
    from: Type.Optional(DateString),
    to: Type.Optional(DateString),
    status: Type.Optional(Type.Enum([...RUN_STATUSES])),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  },
  { additionalProperties: false },
)

export const ListRunsResponse = Type.Object({
  runs: Type.Array(Run),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
})

export const RunIdParam = Type.Object({ id: Type.Integer({ minimum: 1 }) })

export const StatusResponse = Type.Object({
  scheduler: Type.Object({
    enabled: Type.Boolean(),
    cron: Type.String(),
    timezone: Type.String(),
    next_run_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    next_run_local: Type.Union([Type.String(), Type.Null()]),
    leader: Type.Boolean({
      description:
        "True on the replica whose scheduler runs the ticks: always with SQLite and the scheduler enabled; with PostgreSQL, the one replica holding the leader lock; false where BATCH_SCHEDULER_ENABLED=false",
    }),
  }),
  running: Type.Array(Run),
  last_success_date: Type.Union([DateString, Type.Null()]),
})
