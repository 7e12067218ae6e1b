import { Type } from 'typebox'
import { DATA_SOURCES } from '../db/enums.js'

const component = (description?: string) =>
  Type.Object(
    {
      status: Type.Enum(['up', 'down', 'degraded', 'disabled', 'unknown']),
      detail: Type.Record(Type.String(), Type.Unknown()),
    },
    { additionalProperties: false, ...(description ? { description } : {}) },
  )
const Component = component()

export const HealthResponse = Type.Object({
  status: Type.Enum(['healthy', 'degraded', 'unhealthy']),
  influxdb_first_enabled: Type.Boolean(),
  data_source: Type.Enum([...DATA_SOURCES]),
  services: Type.Object({
    sqlite: component('The store of summaries, runs, rates and pricing, whichever engine holds it: the same as `database` (the name predates PostgreSQL)'),
    database: component('The store of summaries, runs, rates and pricing; `detail.engine` says which: `sqlite` (the file) or `postgresql` (DATABASE_URL)'),
    influxdb: Component,
    nbp: Component,
    scheduler: Component,
  }),
  raw_retention: Type.Object(
    {
      mode: Type.Enum([...DATA_SOURCES]),
      managed_by: Type.String(),
      raw_retention_days: Type.Union([Type.Integer(), Type.Null()]),
      archive_dir: Type.Union([Type.String(), Type.Null()]),
    },
    { description: "Who removes old raw usage: this service's retention pass, or the InfluxDB bucket's retention policy" },
  ),
})

export const ProbeResponse = Type.Object({
  status: Type.Enum(['ok', 'unavailable']),
  checks: Type.Optional(Type.Record(Type.String(), Type.String())),
  reason: Type.Optional(Type.String({ description: 'Why the replica is not ready' })),
})
