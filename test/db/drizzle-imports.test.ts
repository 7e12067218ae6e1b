// drizzle-orm's ES modules cost ~180 MB of start-up memory on Node 24 (docs/operations.md#memory):
// the service loads its CommonJS build through src/db/drizzle.ts and src/db/postgres/drizzle.ts,
// and no other module of src/ may import a value from it directly (types are free: erased).
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import t from 'tap'

const SRC = join(import.meta.dirname, '..', '..', 'src')
const SHIMS = new Set(['db/drizzle.ts', 'db/postgres/drizzle.ts'])

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

/** Import and export statements of a module that load a value from drizzle-orm (not `import type`). */
function drizzleValueImports(text: string): string[] {
  const statements = text.match(/^(?:import|export)\b[^;]*?from\s+['"]drizzle-orm(?:\/[^'"]*)?['"]/gms) ?? []
  const dynamic = text.match(/import\(\s*['"]drizzle-orm(?:\/[^'"]*)?['"]\s*\)/g) ?? []
  return [...statements.filter((s) => !/^(?:import|export)\s+type\b/.test(s)), ...dynamic]
}

t.test('the recogniser tells value imports from type imports', async (t) => {
  t.same(drizzleValueImports(`import { eq } from 'drizzle-orm'\n`), [`import { eq } from 'drizzle-orm'`])
  t.same(drizzleValueImports(`import {\n  and,\n  eq,\n} from "drizzle-orm/sqlite-core"\n`).length, 1)
  t.same(drizzleValueImports(`export { sql } from 'drizzle-orm'\n`).length, 1)
  t.same(drizzleValueImports(`const m = await import('drizzle-orm/pg-core')\n`).length, 1)
  t.same(drizzleValueImports(`import type { SQL } from 'drizzle-orm'\nexport type { X } from 'drizzle-orm/pg-core'\n`), [])
})

t.test('only the two loaders of src/db import drizzle-orm values', async (t) => {
  const files = sourceFiles(SRC)
  t.ok(files.length > 50, `src/ has its modules (${files.length})`)
  const offenders = files.filter((f) => !SHIMS.has(relative(SRC, f)) && drizzleValueImports(readFileSync(f, 'utf8')).length > 0)
  t.same(offenders.map((f) => relative(SRC, f)), [], 'no module imports drizzle-orm values directly')
  for (const shim of SHIMS) t.match(readFileSync(join(SRC, shim), 'utf8'), /createRequire\(import\.meta\.url\)/, `${shim} loads the CommonJS build`)
})
