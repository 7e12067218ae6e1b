import { Type } from 'typebox'
import { DATA_SOURCES } from '../db/enums.js'

const Component = Type.Object(
  {
    status: Type.Enum(['up', 'down', 'degraded', 'disabled', 'unknown']),
    detail: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
)

export const HealthResponse = Type.Object({
  status: Type.Enum(['healthy', 'degraded', 'unhealthy']),
  influxdb_first_enabled: Type.Boolean(),
  data_source: Type.Enum([...DATA_SOURCES]),
  services: Type.Object({
    sqlite: Component,
    influxdb: Component,
    nbp: Component,
    scheduler: Component,
  }),
  raw_retention: Type.Object(
    {
      mode: Type.Enum(['sqlite', 'influxdb_first']),
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
