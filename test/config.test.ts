import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

/** Runs loadConfig expecting a ConfigError and returns its message. */
function configErrorOf(t: Test, env: Record<string, string | undefined>): string {
  try {
    loadConfig(env)
  } catch (error) {
    t.type(error, ConfigError, 'throws a ConfigError')
    t.equal((error as Error).name, 'ConfigError')
    return (error as Error).message
  }
  t.fail(`accepted ${JSON.stringify(env)}`)
  return ''
}

/** The variable names a ConfigError message complains about, one per line. */
function namesIn(message: string): string[] {
  return message
    .split('\n')
    .slice(1)
    .map((line) => /^\s*([A-Z_]+):/.exec(line)?.[1] ?? `unparsed line: ${line}`)
}

t.test('defaults with an empty environment', async (t) => {
  const config = loadConfig({})
  t.equal(config.HOST, '127.0.0.1')
  t.equal(config.PORT, 8080)
  t.equal(config.SQLITE_PATH, './data/usage.db')
  t.equal(config.BUSINESS_TIMEZONE, 'Europe/Warsaw')
  t.equal(config.LOG_LEVEL, 'info')
  t.equal(config.USAGE_MARKUP_MULTIPLIER, '1.3')
  t.equal(config.defaultMarkupRate, '1.3')
  t.equal(config.EXCHANGE_RATE_POLICY, 'previous-business-day')
  t.equal(config.NBP_API_URL, 'https://api.nbp.pl/api')
  t.equal(config.influxdbFirst, false)
  t.equal(config.INFLUXDB_URL, undefined)
  t.equal(config.BATCH_SCHEDULER_ENABLED, true)
  t.equal(config.AUTH_DISABLED, false)
  t.equal(config.API_CLIENT_TOKENS, undefined)
})

t.test('empty strings count as unset, unknown variables are ignored', async (t) => {
  const config = loadConfig({ PORT: '', HOST: '', LOG_LEVEL: '', PATH: '/usr/bin', HOME: '/root' })
  t.equal(config.PORT, 8080)
  t.equal(config.HOST, '127.0.0.1')
  t.equal(config.LOG_LEVEL, 'info')
  t.notOk('PATH' in config, 'foreign variables are not copied into the config')
})

t.test('values are read from text', async (t) => {
  const config = loadConfig({
    HOST: '0.0.0.0',
    PORT: '3000',
    LOG_LEVEL: 'debug',
    SQLITE_PATH: '/data/usage.db',
    BUSINESS_TIMEZONE: 'America/New_York',
    USAGE_MARKUP_MULTIPLIER: '1.250',
    BATCH_SCHEDULER_ENABLED: 'false',
    AUTH_DISABLED: '1',
    BATCH_LOOKBACK_DAYS: '0',
  })
  t.equal(config.HOST, '0.0.0.0')
  t.equal(config.PORT, 3000, 'a number, not text')
  t.equal(config.LOG_LEVEL, 'debug')
  t.equal(config.SQLITE_PATH, '/data/usage.db')
  t.equal(config.BUSINESS_TIMEZONE, 'America/New_York')
  t.equal(config.USAGE_MARKUP_MULTIPLIER, '1.250', 'the variable as given')
  t.equal(config.defaultMarkupRate, '1.25', 'the rate in canonical form')
  t.equal(config.BATCH_SCHEDULER_ENABLED, false)
  t.equal(config.AUTH_DISABLED, true)
  t.equal(config.BATCH_LOOKBACK_DAYS, 0)
  t.equal(loadConfig({ BATCH_SCHEDULER_ENABLED: 'TRUE' }).BATCH_SCHEDULER_ENABLED, true, 'case-insensitive')
  t.equal(loadConfig({ BATCH_SCHEDULER_ENABLED: '0' }).BATCH_SCHEDULER_ENABLED, false)
})

t.test('InfluxDB first follows INFLUXDB_URL unless told otherwise', async (t) => {
  const url = 'http://influx.internal:8086'
  t.equal(loadConfig({ INFLUXDB_URL: url }).influxdbFirst, true, 'a URL turns it on')
  t.equal(loadConfig({ INFLUXDB_URL: url, INFLUXDB_FIRST_ENABLED: 'false' }).influxdbFirst, false, 'explicit false wins')
  t.equal(loadConfig({ INFLUXDB_URL: url, INFLUXDB_FIRST_ENABLED: 'true' }).influxdbFirst, true)
  t.equal(loadConfig({ INFLUXDB_FIRST_ENABLED: 'false' }).influxdbFirst, false)
  t.equal(loadConfig({ INFLUXDB_URL: url, INFLUXDB_FIRST_ENABLED: '' }).influxdbFirst, true, 'empty is unset')
})

t.test('an invalid value stops with a message naming the variable', async (t) => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['PORT', { PORT: 'abc' }, /whole number/],
    ['PORT', { PORT: '1.5' }, /whole number/],
    ['PORT', { PORT: '70000' }, /PORT/],
    ['PORT', { PORT: '-1' }, /PORT/],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }, /one of fatal, error, warn, info, debug, trace, silent/],
    ['BUSINESS_TIMEZONE', { BUSINESS_TIMEZONE: 'Mars/Base' }, /IANA time zone/],
    ['USAGE_MARKUP_MULTIPLIER', { USAGE_MARKUP_MULTIPLIER: 'abc' }, /USAGE_MARKUP_MULTIPLIER/],
    ['USAGE_MARKUP_MULTIPLIER', { USAGE_MARKUP_MULTIPLIER: '1.3.0' }, /USAGE_MARKUP_MULTIPLIER/],
    ['BATCH_SCHEDULER_ENABLED', { BATCH_SCHEDULER_ENABLED: 'maybe' }, /true or false/],
    ['EXCHANGE_RATE_POLICY', { EXCHANGE_RATE_POLICY: 'yesterday' }, /previous-business-day, same-day/],
    ['NBP_API_URL', { NBP_API_URL: 'api.nbp.pl' }, /NBP_API_URL/],
    ['INFLUXDB_URL', { INFLUXDB_FIRST_ENABLED: 'true' }, /required when INFLUXDB_FIRST_ENABLED=true/],
  ]
  for (const [name, env, why] of cases) {
    t.test(`${name}=${JSON.stringify(Object.values(env)[0])}`, async (t) => {
      const message = configErrorOf(t, env)
      t.same(namesIn(message), [name], `names ${name} and nothing else`)
      t.match(message, why)
      const value = env[name]
      if (value !== undefined) t.match(message, JSON.stringify(value), 'quotes the bad value of a non-secret')
    })
  }
})

t.test('secret values never appear in the message', async (t) => {
  const secret = 'client-a=sk-live-Zq81xRTa,sk-live-Pw07nMbY'
  let caught: unknown
  try {
    loadConfig({ API_CLIENT_TOKENS: secret })
  } catch (error) {
    caught = error
  }
  t.type(caught, ConfigError)
  const error = caught as ConfigError
  t.same(namesIn(error.message), ['API_CLIENT_TOKENS'], 'the variable is named')
  t.match(error.message, /value hidden/)
  for (const fragment of [secret, 'sk-live-Zq81xRTa', 'sk-live-Pw07nMbY', 'client-a']) {
    t.notMatch(error.message, fragment, `message hides ${fragment}`)
    t.notMatch(String(error.stack), fragment, `stack hides ${fragment}`)
    t.notMatch(JSON.stringify(error), fragment, `serialised error hides ${fragment}`)
  }

  t.test('also when reported beside other errors', async (t) => {
    const message = configErrorOf(t, { API_CLIENT_TOKENS: 'a=b,c', PORT: 'abc' })
    t.same(namesIn(message).sort(), ['API_CLIENT_TOKENS', 'PORT'])
    t.notMatch(message, 'a=b,c')
  })

  t.test('well-formed secrets load', async (t) => {
    const clients = 'acme=acme-token-7f3e9a1c,globex=globex-token-0d6b2e84'
    const config = loadConfig({ API_CLIENT_TOKENS: clients, API_ADMIN_TOKEN: 'admin-secret-51c8e2f7' })
    t.equal(config.API_CLIENT_TOKENS, clients)
    t.equal(config.API_ADMIN_TOKEN, 'admin-secret-51c8e2f7')
  })
})

t.test('several errors are reported together', async (t) => {
  t.test('schema errors', async (t) => {
    const message = configErrorOf(t, { PORT: 'abc', LOG_LEVEL: 'loud', BATCH_SCHEDULER_ENABLED: 'maybe' })
    t.same(namesIn(message).sort(), ['BATCH_SCHEDULER_ENABLED', 'LOG_LEVEL', 'PORT'])
  })
  t.test('schema errors and cross-variable checks in one message', async (t) => {
    // An operator fixing one variable per restart would need five restarts here.
    const message = configErrorOf(t, {
      PORT: '1.5',
      LOG_LEVEL: 'loud',
      USAGE_MARKUP_MULTIPLIER: 'abc',
      BUSINESS_TIMEZONE: 'Mars/Base',
      INFLUXDB_FIRST_ENABLED: 'true',
    })
    t.same(
      namesIn(message).sort(),
      ['BUSINESS_TIMEZONE', 'INFLUXDB_URL', 'LOG_LEVEL', 'PORT', 'USAGE_MARKUP_MULTIPLIER'],
      'every bad variable is named once',
    )
  })
  t.test('a bad boolean is not also read as "enabled"', async (t) => {
    const message = configErrorOf(t, { INFLUXDB_FIRST_ENABLED: 'maybe', BUSINESS_TIMEZONE: 'Mars/Base' })
    t.same(namesIn(message).sort(), ['BUSINESS_TIMEZONE', 'INFLUXDB_FIRST_ENABLED'])
  })
})

t.test('the default markup keeps the per-client bounds, 1 to 10', async (t) => {
  t.throws(() => loadConfig({ USAGE_MARKUP_MULTIPLIER: '0.9' }), /USAGE_MARKUP_MULTIPLIER: must be between 1 and 10/)
  t.throws(() => loadConfig({ USAGE_MARKUP_MULTIPLIER: '10.01' }), /between 1 and 10/)
  t.equal(loadConfig({ USAGE_MARKUP_MULTIPLIER: '10' }).defaultMarkupRate, '10')
  t.equal(loadConfig({ USAGE_MARKUP_MULTIPLIER: '1.000' }).defaultMarkupRate, '1')
})

t.test('credentials inside a refused URL are not echoed', async (t) => {
  try {
    loadConfig({ INFLUXDB_URL: 'ftp://admin:hunter2@influx.local:8086' })
    t.fail('should refuse')
  } catch (e) {
    t.match((e as Error).message, /INFLUXDB_URL/)
    t.notMatch((e as Error).message, /hunter2/)
  }
})
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

t.test('a token configured for two roles is refused, without echoing it', async (t) => {
  try {
    loadConfig({ API_ADMIN_TOKEN: 'same-secret-4a7c9e0b', API_CLIENT_TOKENS: 'acme=same-secret-4a7c9e0b' })
    t.fail('should refuse')
  } catch (e) {
    t.match((e as Error).message, /more than one role/)
    t.notMatch((e as Error).message, /same-secret/)
  }
  t.ok(
    loadConfig({
      API_ADMIN_TOKEN: 'admin-token-a1b2c3d4',
      API_READ_TOKEN: 'read-token-e5f6a7b8',
      API_CLIENT_TOKENS: 'x=client-x-token-c9d0,y=client-y-token-e1f2',
    }),
  )
})

t.test('SPEC §9: short and placeholder tokens are refused at start, naming the variable, never the value', async (t) => {
  const good = 'f3a9c1e07b5d4e2a'
  t.equal(good.length, 16)
  t.ok(loadConfig({ API_ADMIN_TOKEN: good }), 'exactly 16 characters is enough')
  const variables = ['API_ADMIN_TOKEN', 'API_READ_TOKEN', 'API_INGEST_TOKEN'] as const
  const bad: Array<[string, RegExp]> = [
    ['f3a9c1e07b5d4e2', /must be at least 16 characters/],
    ['Q7', /must be at least 16 characters/],
    ['CHANGE-ME-admin-token', /placeholder/],
    ['changeme-0123456789abcdef', /placeholder/],
    ['0123456789-ChangeMe-abcdef', /placeholder/],
    ['prod-change_me-0123456789', /placeholder/],
  ]
  for (const name of variables) {
    for (const [value, why] of bad) {
      const message = configErrorOf(t, { [name]: value })
      t.same(namesIn(message), [name], `${name}=<${value.length} chars> names ${name} only`)
      t.match(message, why)
      t.match(message, 'openssl rand -hex 32', 'says how to make a token')
      t.notMatch(message, value, 'never echoes the value')
    }
  }

  t.test('API_CLIENT_TOKENS: each client token, the client named', async (t) => {
    const message = configErrorOf(t, { API_CLIENT_TOKENS: `acme=${good}0,globex=short-token,initech=CHANGE-ME-client-token` })
    t.same(namesIn(message), ['API_CLIENT_TOKENS', 'API_CLIENT_TOKENS'])
    t.match(message, /client "globex" must be at least 16 characters/)
    t.match(message, /client "initech" is a placeholder/)
    t.notMatch(message, /acme/, 'a good token is not reported')
    t.notMatch(message, /short-token|CHANGE-ME-client/)
  })

  t.test('every bad token at once, beside other errors', async (t) => {
    const message = configErrorOf(t, { API_ADMIN_TOKEN: 'admin', API_READ_TOKEN: 'CHANGEME', PORT: 'x' })
    t.same(namesIn(message).sort(), ['API_ADMIN_TOKEN', 'API_READ_TOKEN', 'PORT'])
  })

  t.test('AUTH_DISABLED does not make a placeholder acceptable', async (t) => {
    // The tokens would come back into force the day AUTH_DISABLED is removed.
    t.same(namesIn(configErrorOf(t, { AUTH_DISABLED: 'true', API_ADMIN_TOKEN: 'CHANGE-ME-admin-token' })), ['API_ADMIN_TOKEN'])
  })
})

t.test('DATABASE_URL: unset keeps SQLite; a PostgreSQL URL is checked, its password never echoed', async (t) => {
  t.equal(loadConfig({}).DATABASE_URL, undefined)
  const url = 'postgres://usage:s3cret@db.internal:5432/usage'
  t.equal(loadConfig({ DATABASE_URL: url }).DATABASE_URL, url)
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://db/usage' }).DATABASE_URL, 'postgresql://db/usage')
  for (const [bad, why] of [
    ['mysql://u:s3cret@db/usage', /DATABASE_URL: .*pattern/],
    ['postgres://u:s3cret@db.internal:5432', /DATABASE_URL: must name the database/],
    ['postgres://u:s3cret@:5432/usage', /DATABASE_URL: /],
  ] as const) {
    const error = (() => {
      try {
        loadConfig({ DATABASE_URL: bad })
      } catch (e) {
        return e as Error
      }
    })()
    t.match(error?.message, why, bad)
    t.notMatch(error?.message, /s3cret/, 'the password is not echoed')
  }
})
