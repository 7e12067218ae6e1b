// npm run openapi: writes openapi.yaml from the route schemas (buildApp, no listen).
// npm run openapi:check: exits 1 when the committed openapi.yaml differs from what the routes say.
import { readFileSync, writeFileSync } from 'node:fs'
import { openApiYaml } from './openapi-document.js'

const target = new URL('../openapi.yaml', import.meta.url)
const current = await openApiYaml()
if (process.argv.includes('--check')) {
  const committed = readFileSync(target, 'utf8')
  if (committed !== current) {
    process.stderr.write('openapi.yaml is stale: run `npm run openapi` and commit it\n')
    process.exit(1)
  }
  process.stdout.write('openapi.yaml is current\n')
} else {
  writeFileSync(target, current)
  process.stdout.write(`wrote ${target.pathname}\n`)
}
