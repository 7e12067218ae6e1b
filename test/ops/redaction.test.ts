// Credentials in configured URLs (NBP_API_URL, INFLUXDB_URL, ALERT_WEBHOOK_URL) never reach /health,
// the run ledger (/batch/runs) or a log line; an NBP failure is one log line with its cause.
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { createServer } from 'node:http'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { loadConfig } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { redactText, redactUrl } from '../../src/redact.js'
import { describe } from '../../src/errors.js'
import { createServices } from '../../src/services.js'
import { listenService } from '../helpers/app.js'
import { startFakeNbp } from '../helpers/fake-nbp.js'

function capture() {
  const chunks: string[] = []
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk))
      callback()
    },
  })
  const lines = () => chunks.join('').split('\n').filter(Boolean)
  return { destination, lines, parsed: () => lines().map((l) => JSON.parse(l) as Record<string, unknown>) }
}

t.test('redactUrl hides userinfo and credential-like query values, and nothing else', async (t) => {
  const cases: Array<[string, string]> = [
    ['http://user:pass@127.0.0.1:8080/api', 'http://[redacted]@127.0.0.1:8080/api'],
    ['https://admin:p%40ss@influx.local:8086/', 'https://[redacted]@influx.local:8086/'],
    ['https://user@host/x', 'https://[redacted]@host/x'],
    ['http://a:b@c@host/path?x=1', 'http://[redacted]@host/path?x=1'],
    ['http://influx:8086/query?db=usage&u=admin&p=s3cret&q=SELECT', 'http://influx:8086/query?db=usage&u=[redacted]&p=[redacted]&q=SELECT'],
    ['https://hooks.example/x?token=abc&channel=ops&api_key=k#frag', 'https://hooks.example/x?token=[redacted]&channel=ops&api_key=[redacted]#frag'],
    ['https://api.nbp.pl/api', 'https://api.nbp.pl/api'],
  ]
  for (const [input, expected] of cases) t.equal(redactUrl(input), expected, input)
  t.equal(
    redactText('fetch failed: Request cannot be constructed from a URL that includes credentials: http://user:pass@127.0.0.1:9/api/x (then "https://u:p@h/")'),
    'fetch failed: Request cannot be constructed from a URL that includes credentials: http://[redacted]@127.0.0.1:9/api/x (then "https://[redacted]@h/")',
  )
  t.equal(redactText('no url here: user:pass'), 'no url here: user:pass', 'text without a URL is left alone')
})

t.test("an undici error quoting a URL with credentials is logged without them, cause included", async (t) => {
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.destination })
  const failure = await fetch('http://user:pass@127.0.0.1:9/api').catch((e: unknown) => e)
  t.ok(failure instanceof Error, 'fetch refused the URL')
  t.match((failure as Error).message, /user:pass@/, 'undici quotes the URL with its credentials')
  log.error({ err: new Error('NBP request failed', { cause: failure }) }, `while asking ${'http://user:pass@127.0.0.1:9/api'}`)
  log.warn({ detail: { reason: (failure as Error).message } }, 'nested')
  const lines = out.lines()
  t.equal(lines.length, 2)
  for (const line of lines) t.notMatch(line, /pass/, line)
  t.match(lines[0], /\[redacted\]@127\.0\.0\.1:9/, 'the cause is still there, redacted')
})

async function serverWith(t: Test, env: Record<string, string>) {
  const out = capture()
  const log = createLogger({ level: 'trace', destination: out.destination })
  const config = loadConfig({
    SQLITE_PATH: join(t.testdir({}), 'usage.db'),
    BATCH_SCHEDULER_ENABLED: 'false',
    LOG_LEVEL: 'trace',
    ...env,
  })
  const { base, close } = await listenService(t, config, log)
  return { base, close, out }
}

/** The word itself is fine where the service says it ("usage-batch retention pass"); a credential is not. */
const leaks = (text: string) => /pass/.test(text.replaceAll('retention pass', ''))

t.test('NBP_API_URL with credentials, NBP failing: /health, /batch/runs and the log never show them', async (t) => {
  const nbp = await startFakeNbp({ mode: 'error500' })
  t.teardown(() => nbp.close())
  const nbpUrl = `http://user:pass@127.0.0.1:${nbp.port}/api`
  const server = await serverWith(t, { NBP_API_URL: nbpUrl, NBP_MAX_RETRIES: '1', NBP_TIMEOUT_MS: '2000' })

  const run = await fetch(`${server.base}/batch/run?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ date: '2026-11-20' }),
  })
  t.equal(run.status, 200)
  const closed = ((await run.json()) as { runs: Array<{ id: number; status: string; warnings: string[] }> }).runs[0]!
  t.equal(closed.status, 'succeeded_with_warnings', 'USD written, PLN missing')
  t.match(closed.warnings.join(' '), /HTTP 500.*after 2 attempts/, 'the warning names the cause')

  // The credentials went to NBP as basic auth (fetch refuses them in the URL), never in a message.
  t.ok(nbp.requests.length >= 2, 'NBP was asked, with retries')
  for (const r of nbp.requests) t.equal(r.authorization, `Basic ${Buffer.from('user:pass').toString('base64')}`)

  const bodies = {
    health: await (await fetch(`${server.base}/health`)).text(),
    runs: await (await fetch(`${server.base}/batch/runs`)).text(),
    run: await (await fetch(`${server.base}/batch/runs/${closed.id}`)).text(),
  }
  const health = JSON.parse(bodies.health) as { services: { nbp: { status: string; detail: { last_error: string | null } } } }
  t.equal(health.services.nbp.status, 'down')
  t.match(health.services.nbp.detail.last_error, /HTTP 500/, 'the NBP error is shown')
  for (const [name, body] of Object.entries(bodies)) t.notOk(leaks(body), `${name} never carries the password: ${body.slice(0, 300)}`)
  await server.close()

  const lines = server.out.lines()
  t.ok(lines.length > 5, 'the server logged')
  for (const line of lines) t.notOk(leaks(line), `log line without the password: ${line.slice(0, 300)}`)

  // Issue 17: one warning line with the cause; the stack only at debug.
  const parsed = server.out.parsed()
  const failures = parsed.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('USD/PLN rate unavailable'))
  t.equal(failures.length, 1, 'one line per NBP failure')
  t.match(failures[0], {
    level: 40,
    usageDate: '2026-11-20',
    nbp: { code: 'NBP_HTTP', status: 500, attempts: 2, url: `http://[redacted]@127.0.0.1:${nbp.port}/api/exchangerates/rates/a/usd/2026-11-10/2026-11-19/?format=json` },
  })
  t.match(failures[0]!.msg, /HTTP 500.*after 2 attempts/)
  const aboveDebug = parsed.filter((l) => (l.level as number) > 20)
  t.ok(aboveDebug.length > 0)
  for (const l of aboveDebug) t.notMatch(JSON.stringify(l), /"stack"/, `no stack at info or above: ${String(l.msg)}`)
  t.ok(
    parsed.some((l) => l.level === 20 && l.msg === 'USD/PLN rate failure detail' && /\n\s+at /.test(String((l.err as { stack?: string })?.stack))),
    'the stack is kept at debug',
  )
})

t.test('INFLUXDB_URL with credentials: they travel as basic auth; the start, its log and /health keep them hidden', async (t) => {
  const seen: Array<string | undefined> = []
  const ping = createServer((request, response) => {
    seen.push(request.headers.authorization)
    response.writeHead(204, { 'x-influxdb-version': '1.8.10' }).end()
  })
  await new Promise<void>((resolve) => ping.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => ping.close(() => resolve())))
  const port = (ping.address() as AddressInfo).port
  const out = capture()
  const log = createLogger({ level: 'info', destination: out.destination })
  for (const [name, url] of [
    ['an InfluxDB that answers', `http://admin:pass@127.0.0.1:${port}/`],
    ['an InfluxDB that does not', 'http://admin:pass@127.0.0.1:9/'],
  ] as const) {
    const config = loadConfig({
      SQLITE_PATH: join(t.testdir({}), `${port}-${name.length}.db`),
      BATCH_SCHEDULER_ENABLED: 'false',
      INFLUXDB_URL: url,
      INFLUXDB_DATABASE: 'usage',
    })
    const services = await createServices(config, { log })
    t.teardown(() => services.close())
    const refusal = await services.source.ready!().then(
      () => undefined,
      (e: Error) => e,
    )
    // What the log and the run ledger get: the error with its cause (describe); the 503 body gets the message alone.
    const detected = refusal ? describe(refusal) : 'ready'
    if (name === 'an InfluxDB that answers') {
      t.equal(detected, 'ready', `${name}: the dialect is detected`)
      t.equal(seen.at(-1), `Basic ${Buffer.from('admin:pass').toString('base64')}`, `${name}: the credentials arrive as basic auth`)
    } else {
      t.match(detected, /127\.0\.0\.1:9/, `${name}: the reason still says where`)
      t.notMatch(refusal!.message, /127\.0\.0\.1/, `${name}: the 503 body says it in its own words, not the fetch error's`)
      t.notMatch(detected, /pass/, `${name}: without the password`)
      t.notMatch(JSON.stringify(await services.source.check()), /pass/, `${name}: the health detail too`)
    }
  }
  const lines = out.lines()
  t.ok(lines.length > 0, 'the start logged')
  for (const line of lines) t.notOk(leaks(line), line.slice(0, 300))
})
