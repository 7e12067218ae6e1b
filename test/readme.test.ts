// The README stays true for a newcomer: every configuration variable and every route is documented.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { EnvSchema } from '../src/config.js'
import { buildTestApp } from './helper.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

t.test('every environment variable is in the configuration table', async (t) => {
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 5))
  for (const name of Object.keys(EnvSchema.properties)) {
    t.match(table, new RegExp('`' + name + '`'), name)
  }
})

t.test('every route of the API is mentioned', async (t) => {
  const { app } = await buildTestApp(t)
  const spec = app.swagger() as { paths: Record<string, Record<string, unknown>> }
  for (const path of Object.keys(spec.paths)) {
    if (path.startsWith('/docs')) continue
    // A route counts as documented when the README shows it, with its parameters or with an example value.
    const pattern = new RegExp(path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/\\s?`"\']+'))
    t.match(readme, pattern, path)
  }
})
