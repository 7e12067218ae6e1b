// drizzle/ is generated from src/db/schema.ts and committed: it must not be stale.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { migrationsFolder } from '../../src/db/migrations.js'

t.test('drizzle-kit finds nothing to generate against the committed migrations', async (t) => {
  const dir = t.testdir({})
  const out = join(dir, 'drizzle')
  cpSync(migrationsFolder(), out, { recursive: true })
  const root = join(migrationsFolder(), '..')
  const config = join(dir, 'drizzle.config.mjs')
  // drizzle-kit reads `out` relative to its working directory (it prefixes "./").
  writeFileSync(config, `export default { dialect: 'sqlite', schema: './src/db/schema.ts', out: ${JSON.stringify(relative(root, out))} }\n`)
  const before = readdirSync(out).sort()
  const run = spawnSync(process.execPath, [join(root, 'node_modules/drizzle-kit/bin.cjs'), 'generate', '--config', config], {
    cwd: root,
    encoding: 'utf8',
  })
  const output = `${run.stdout}${run.stderr}`
  t.equal(run.status, 0, output)
  t.same(readdirSync(out).sort(), before, `no new migration (drizzle-kit said: ${output.trim().split('\n').at(-1)})`)
  t.match(output, /No schema changes/, "drizzle-kit reports the schema in step with drizzle/")
})
