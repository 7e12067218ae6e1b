import { Type } from 'typebox'
import { DateString } from './common.js'
import { DATA_SOURCES } from '../db/enums.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

export const StorageResponse = Type.Object({
  retention: Type.Object({
    mode: Type.Enum([...DATA_SOURCES]),
    managed_by: Type.String(),
    raw_retention_days: Nullable(Type.Integer({ description: 'null: raw rows are kept forever (RAW_RETENTION_DAYS=0) or InfluxDB rules' })),
    archive_dir: Nullable(Type.String()),
  }),
  raw: Type.Object({
    rows: Type.Integer(),
    bytes: Type.Integer(),
    bytes_method: Type.Enum(['dbstat', 'row_size'], {
      description: 'dbstat: pages of usage_events and its indexes, shared out by row count; row_size: summed column sizes (estimate)',
    }),
    oldest_day: Nullable(DateString),
    newest_day: Nullable(DateString),
    months: Type.Array(Type.Object({ month: Type.String({ pattern: '^\\d{4}-\\d{2}$' }), rows: Type.Integer(), bytes: Type.Integer() })),
  }),
  archives: Type.Array(
    Type.Object({
      usage_date: DateString,
      file_name: Nullable(Type.String()),
      rows: Type.Integer(),
      bytes: Nullable(Type.Integer()),
      sha256: Nullable(Type.String()),
      archived_at: Nullable(Type.String({ format: 'date-time' })),
      purged_at: Nullable(Type.String({ format: 'date-time' })),
      restored_at: Nullable(Type.String({ format: 'date-time' })),
      file_present: Nullable(Type.Boolean()),
    }),
  ),
  sqlite: Type.Object({
    path: Type.String(),
    file_bytes: Type.Integer(),
    wal_bytes: Type.Integer(),
    page_size: Type.Integer(),
    page_count: Type.Integer(),
    freelist_count: Type.Integer(),
    free_bytes: Type.Integer(),
    auto_vacuum: Type.Enum(['none', 'full', 'incremental']),
  }),
})
