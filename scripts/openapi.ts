// npm run openapi: writes openapi.yaml from the route schemas (buildApp, no listen).
import { writeFileSync } from 'node:fs'
import { openApiYaml } from './openapi-document.js'

const target = new URL('../openapi.yaml', import.meta.url)
writeFileSync(target, await openApiYaml())
process.stdout.write(`wrote ${target.pathname}\n`)
