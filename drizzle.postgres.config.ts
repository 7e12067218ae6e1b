// PostgreSQL migrations (DATABASE_URL mode), generated beside the SQLite ones in drizzle/.
import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/postgres/schema.ts',
  out: './drizzle/postgres',
})
