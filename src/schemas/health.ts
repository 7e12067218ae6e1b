import { Type } from 'typebox'

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
  data_source: Type.Enum(['influxdb_first', 'sqlite']),
  services: Type.Object({
    sqlite: Component,
    influxdb: Component,
    nbp: Component,
    scheduler: Component,
  }),
})

export const ProbeResponse = Type.Object({
  status: Type.Enum(['ok', 'unavailable']),
  checks: Type.Optional(Type.Record(Type.String(), Type.String())),
})
