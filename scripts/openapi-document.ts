// The OpenAPI document as YAML text, built from buildApp without listening: shared by
// `npm run openapi` (writes openapi.yaml) and the test that fails when the file is stale.
import pino from 'pino'
import { stringify, type SchemaOptions } from 'yaml'
import { buildApp } from '../src/app.js'
import { fixedClock } from '../src/clock.js'
import { loadConfig } from '../src/config.js'
import { createServices } from '../src/services.js'

/**
 * YAML 1.1, the version PyYAML and many client generators read: there "2026-11-27" is a date and
 * "on"/"no" are booleans unless quoted, so the document is written (and checked) as 1.1, which
 * quotes each such string; 1.2 readers get the same values. The timestamp type is re-enabled
 * here because tap's YAML reporter switches the shared one off for the whole test process.
 */
export const YAML_1_1: SchemaOptions & { version: '1.1' } = {
  version: '1.1',
  customTags: (tags) =>
    tags.map((tag) => (typeof tag === 'object' && tag.tag === 'tag:yaml.org,2002:timestamp' ? { ...tag, default: true } : tag)),
}

/**
 * Built with a token configured, an in-memory database and a fixed clock, so the document does
 * not depend on the machine's environment.
 */
export async function openApiYaml(): Promise<string> {
  const config = loadConfig({ SQLITE_PATH: ':memory:', BATCH_SCHEDULER_ENABLED: 'false', API_ADMIN_TOKEN: 'openapi-generation' })
  const services = await createServices(config, { log: pino({ level: 'silent' }), clock: fixedClock(0) })
  const app = await buildApp(config, services)
  try {
    await app.ready()
    return stringify(app.swagger(), { lineWidth: 0, aliasDuplicateObjects: false, ...YAML_1_1 })
  } finally {
    await app.close()
    await services.close()
  }
}
