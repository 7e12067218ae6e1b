import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

t.test('NBP timeout and retries have defaults and are validated', async (t) => {
  const defaults = loadConfig({})
  t.equal(defaults.NBP_TIMEOUT_MS, 10_000)
  t.equal(defaults.NBP_MAX_RETRIES, 3)
  const set = loadConfig({ NBP_TIMEOUT_MS: '2500', NBP_MAX_RETRIES: '0' })
  t.equal(set.NBP_TIMEOUT_MS, 2_500)
  t.equal(set.NBP_MAX_RETRIES, 0)
  t.throws(() => loadConfig({ NBP_TIMEOUT_MS: '0' }), ConfigError)
  t.throws(() => loadConfig({ NBP_MAX_RETRIES: '-1' }), ConfigError)
  t.throws(() => loadConfig({ NBP_MAX_RETRIES: '2.5' }), /NBP_MAX_RETRIES/)
})
