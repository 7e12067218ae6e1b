// A test app whose batch prices days with the production rate provider over the app's own store: a
// stored (e.g. manual) rate is used as is, and NBP is a closed loopback port, so a day without a
// stored rate gets no PLN (never a guessed one). This is the test helper's default wiring; the name
// says what these tests rely on.
import type { Test } from 'tap'
import type { RateProvider } from '../../src/rates/types.js'
import { buildTestApp, type TestApp, type TestAppOptions } from '../helper.js'

export async function buildStoreRatesApp(t: Test, options: Omit<TestAppOptions, 'rates'> = {}): Promise<TestApp & { rates: RateProvider }> {
  const built = await buildTestApp(t, options)
  return { ...built, rates: built.services.rates }
}
