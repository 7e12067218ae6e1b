// A test app whose batch prices days with the production rate provider over the app's own database:
// a stored (e.g. manual) rate is used as is, and NBP is a closed loopback port, so a day without a
// stored rate gets no PLN (never a guessed one).
import type { Test } from 'tap'
import { createNbpClient } from '../../src/rates/nbp.js'
import { createRateProvider } from '../../src/rates/resolve.js'
import type { RateProvider } from '../../src/rates/types.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { deadPort } from './fake-nbp.js'

export async function buildStoreRatesApp(t: Test, options: Parameters<typeof buildTestApp>[1] = {}): Promise<TestApp & { rates: RateProvider }> {
  const port = await deadPort()
  let provider: ReturnType<typeof createRateProvider> | undefined
  const rates: RateProvider = { resolveUsdPlnRate: (date) => provider!.resolveUsdPlnRate(date) }
  // The provider needs the app's database: built right after the app, before any request.
  const built = await buildTestApp(t, { ...options, rates })
  const nbp = createNbpClient({ baseUrl: `http://127.0.0.1:${port}/api`, timeoutMs: 500, maxRetries: 0, baseDelayMs: 1, sleep: async () => {} })
  provider = createRateProvider({ db: built.db, nbp, policy: 'previous-business-day', clock: built.clock })
  return { ...built, rates }
}
