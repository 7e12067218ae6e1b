// The README's first ten minutes, as a newcomer pastes them. The commands are read from the README
// itself (its "Quick start" and "Ingest → batch → read" shell blocks), run one by one in one bash
// against a real server process on 127.0.0.1 with a fresh database and the README's environment
// (defaults: scheduler on, start-up catch-up of 7 days), and every field and number the README shows
// after a command is compared with the real answer. When the README drifts, this fails.
// Two things differ from a newcomer's machine, both stated: the server listens on a free port (the
// README's `B=http://127.0.0.1:8080` line is the one line replaced), and NBP is a local stand-in
// speaking NBP's format (tests never leave the machine).
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startFakeNbp } from './helpers/fake-nbp.js'
import { waitFor } from './support/children.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const README = readFileSync(join(root, 'README.md'), 'utf8')
const README_BASE_LINE = 'B=http://127.0.0.1:8080'
const WALKTHROUGH_TIMEOUT_MS = 90_000

/** The text of a `## ` section, up to the next one. */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`)
  if (start < 0) throw new Error(`README has no section "## ${title}"`)
  const next = README.indexOf('\n## ', start + 1)
  return README.slice(start, next < 0 ? undefined : next)
}

function shellBlocks(text: string): string[] {
  return [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)
}

interface Step {
  command: string
  /** The comment lines right under the command that show its answer, if any. */
  shown?: string
}

/** A command is complete when bash can parse it and no here-document is left open. */
function complete(command: string): boolean {
  if (/\\$/.test(command)) return false
  const heredoc = /<<-?\s*['"]?(\w+)['"]?/.exec(command)
  if (heredoc && !command.split('\n').slice(1).some((line) => line === heredoc[1])) return false
  return spawnSync('bash', ['-n', '-c', command]).status === 0
}

/** Commands of a block, each with the answer shown under it. Comments between commands are prose. */
function stepsOf(block: string): Step[] {
  const lines = block.replace(/\n$/, '').split('\n')
  const steps: Step[] = []
  let i = 0
  while (i < lines.length) {
    if (lines[i]!.trim() === '' || lines[i]!.startsWith('#')) {
      i += 1
      continue
    }
    let command = lines[i++]!
    while (!complete(command)) {
      if (i >= lines.length) throw new Error(`README: unfinished command:\n${command}`)
      command += `\n${lines[i++]}`
    }
    // Shown answers start with JSON or a date; a comment that starts with words is prose.
    const shown: string[] = []
    if (i < lines.length && /^# [{[\d]/.test(lines[i]!)) {
      while (i < lines.length && lines[i]!.startsWith('#')) shown.push(lines[i++]!.replace(/^#\s?/, ''))
    }
    steps.push(shown.length > 0 ? { command, shown: shown.join('\n') } : { command })
  }
  return steps
}

/**
 * Runs the steps in one bash (variables carry over), each answer cut out between markers.
 * Asynchronous: the stand-in NBP lives in this process and must keep answering meanwhile.
 */
async function runSteps(steps: Step[], env: Record<string, string>): Promise<Array<{ output: string; status: number }>> {
  const script = steps
    .map((s, i) => `printf '\\n<<<step ${i}>>>\\n'\n${s.command}\nprintf '\\n<<<end ${i} %s>>>\\n' "$?"`)
    .join('\n')
  const child = spawn('bash', ['-c', script], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  const timer = setTimeout(() => child.kill('SIGKILL'), WALKTHROUGH_TIMEOUT_MS)
  await new Promise((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  return steps.map((_, i) => {
    const m = new RegExp(`<<<step ${i}>>>\\n([\\s\\S]*?)\\n<<<end ${i} (\\d+)>>>`).exec(stdout)
    if (!m) throw new Error(`step ${i} did not finish:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`)
    return { output: m[1]!.trim(), status: Number(m[2]) }
  })
}

type Pair = [key: string, value: unknown]

/** Every "key": value pair anywhere in a JSON value (arrays and objects walked). */
function pairsOf(value: unknown, into: Pair[] = []): Pair[] {
  if (Array.isArray(value)) for (const v of value) pairsOf(v, into)
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      into.push([k, v])
      pairsOf(v, into)
    }
  }
  return into
}

/** The "key":value pairs the README shows; `…` stands for a value it does not spell out. */
function shownPairs(shown: string): Array<[key: string, value: unknown, spelled: boolean]> {
  const found: Array<[string, unknown, boolean]> = []
  for (const m of shown.matchAll(/"([a-z_]+)":(…|-?\d+(?:\.\d+)?|"(?:[^"\\]|\\.)*"|null|true|false)/g)) {
    found.push(m[2] === '…' ? [m[1]!, undefined, false] : [m[1]!, JSON.parse(m[2]!), true])
  }
  return found
}

/** Yesterday in Warsaw, computed here without the README's `date` line. */
function warsawYesterday(nowMs: number): string {
  const [y, m, d] = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Warsaw', year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(nowMs)
    .split('-')
    .map(Number) as [number, number, number]
  return new Date(Date.UTC(y, m - 1, d - 1)).toISOString().slice(0, 10)
}

t.test('stepsOf reads commands, here-documents and the answers shown under them', async (t) => {
  const steps = stepsOf(
    ['X=1', '# prose', 'echo "$X"', '# 1', '', 'cat <<EOF', '{"a": 1}', 'EOF', '# {"a": 1}', 'printf "%s" \\', '  ok'].join('\n'),
  )
  t.same(steps, [
    { command: 'X=1' },
    { command: 'echo "$X"', shown: '1' },
    { command: 'cat <<EOF\n{"a": 1}\nEOF', shown: '{"a": 1}' },
    { command: 'printf "%s" \\\n  ok' },
  ])
})

t.test("the README's quick start and walkthrough, run as pasted against a started server", async (t) => {
  const quickStart = shellBlocks(section('Quick start'))
  const walkthrough = shellBlocks(section('Ingest → batch → read'))
  t.equal(quickStart.length, 2, 'Quick start: the setup block and the first request')
  t.equal(walkthrough.length, 1, 'the walkthrough is one block')
  // The first block is the machine's setup (npm ci installs, npm test would run this very suite):
  // what matters here is that `npm start` runs the program this test starts.
  t.match(quickStart[0], /^npm ci && npm start\b/m)
  t.match(quickStart[0], /^npm test\b/m)
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.equal(pkg.scripts.start, 'node scripts/supported-node.mjs node dist/src/server.js', 'npm start runs the build of src/server.ts (on a supported Node), which this test starts')

  const nbp = await startFakeNbp()
  t.teardown(() => nbp.close())
  const dir = t.testdir({})
  const server = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    // The README's environment is the defaults; only the port, the file and NBP are the test's.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PORT: '0', SQLITE_PATH: join(dir, 'usage.db'), NBP_API_URL: nbp.baseUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  server.stdout.setEncoding('utf8').on('data', (s: string) => (log += s))
  server.stderr.setEncoding('utf8').on('data', (s: string) => (log += s))
  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM')
    await exited
  })
  const base = await waitFor(
    'the server to listen',
    () => {
      if (server.exitCode !== null) throw new Error(`server exited: ${log}`)
      return /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1]
    },
    30_000,
    20,
  )

  const steps = [...stepsOf(quickStart[1]!), ...stepsOf(walkthrough[0]!)]
  const baseLines = steps.filter((s) => s.command === README_BASE_LINE)
  t.equal(baseLines.length, 2, `both blocks set ${README_BASE_LINE} before using $B`)
  for (const s of baseLines) s.command = `B=${base}`
  t.ok(steps.length >= 8, `${steps.length} commands`)

  const yesterdayBefore = warsawYesterday(Date.now())
  const results = await runSteps(steps, { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir })
  if (warsawYesterday(Date.now()) !== yesterdayBefore) {
    // The server's "yesterday" moved under the commands: nothing below would mean anything.
    t.comment('midnight in Warsaw passed during the run; not compared')
    return
  }

  let readmeDate: string | undefined
  let actualDate: string | undefined
  let compared = 0
  for (const [i, step] of steps.entries()) {
    const { output, status } = results[i]!
    const label = step.command.split('\n')[0]!.slice(0, 70)
    t.equal(status, 0, `${label}: exit 0`)
    if (step.shown === undefined) continue
    // Notes in parentheses after two spaces are for the reader, not part of the answer.
    const shown = step.shown
      .split('\n')
      .map((line) => line.replace(/\s{2,}\(.*\)\s*$/, ''))
      .join('\n')
      .trim()
    if (/^\d{4}-\d{2}-\d{2}$/.test(shown)) {
      readmeDate = shown
      actualDate = output
      t.equal(output, yesterdayBefore, `${label}: yesterday in Warsaw`)
      continue
    }
    let answer: unknown
    try {
      answer = JSON.parse(output)
    } catch {
      t.fail(`${label}: answered JSON`, { output })
      continue
    }
    const actual = pairsOf(answer).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    const keys = new Set(pairsOf(answer).map(([k]) => k))
    const expected = shownPairs(readmeDate && actualDate ? shown.replaceAll(readmeDate, actualDate) : shown)
    t.ok(expected.length > 0, `${label}: the README shows fields`)
    for (const [key, value, spelled] of expected) {
      if (!spelled) {
        t.ok(keys.has(key), `${label}: has ${key}`)
        continue
      }
      const at = actual.indexOf(`${key}=${JSON.stringify(value)}`)
      // Each shown pair uses up one real one, so a pair shown twice must be there twice.
      if (t.ok(at >= 0, `${label}: ${key} is ${JSON.stringify(value)}`, { answer: output.slice(0, 1500) })) actual.splice(at, 1)
      compared += 1
    }
  }
  t.ok(readmeDate, 'the README shows the date its answers use')
  t.ok(compared >= 25, `${compared} shown values compared`)

  // What the README says about the answers, beyond the fields it spells out.
  const runs = (await (await fetch(`${base}/batch/runs?limit=10`)).json()) as { runs: Array<{ id: number; trigger: string; processing_date: string; status: string }> }
  const catchup = runs.runs.filter((r) => r.trigger === 'catchup')
  t.same(catchup.map((r) => r.id).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7], 'runs 1 to 7 are the start-up catch-up')
  t.equal(catchup.find((r) => r.id === 7)?.processing_date, actualDate, 'catch-up ran yesterday last')
  const daily = (await (await fetch(`${base}/usage/clients/acme/daily?from=${actualDate}&to=${actualDate}`)).json()) as {
    days: Array<{ markup_cost_pln: number | null; exchange_rate_usd_pln: number | null }>
  }
  t.type(daily.days[0]?.markup_cost_pln, 'number', 'with NBP answering, PLN is filled')
  t.ok(nbp.requests.length > 0, 'the rate came from the (stand-in) NBP')
})

t.test('every variable a shell block of the docs uses is set above its use, in the same file', async (t) => {
  const inFolder = (folder: string) =>
    readdirSync(join(root, folder))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `${folder}/${name}`)
  const files = ['README.md', 'CONTRIBUTING.md', ...inFolder('docs'), ...inFolder('bench')]
  const unset: string[] = []
  const usesPerFile = new Map<string, number>()
  for (const file of files) {
    // Each page is pasted on its own: a variable counts as set only when that page set it above.
    const assigned = new Set(['PWD', 'HOME', 'PATH'])
    let uses = 0
    for (const block of shellBlocks(readFileSync(join(root, file), 'utf8'))) {
      for (const line of block.split('\n')) {
        if (line.startsWith('#')) continue
        // Assignments first: `X=$(…)` on one line sets X for the lines below.
        const uses_ = [...line.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g)].map((m) => m[1]!)
        for (const m of line.matchAll(/(?:^|[\s;(&|])(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/g)) assigned.add(m[1]!)
        for (const name of uses_) {
          uses += 1
          if (!assigned.has(name)) unset.push(`${file}: $${name} in: ${line.trim()}`)
        }
      }
    }
    usesPerFile.set(file, uses)
  }
  t.ok((usesPerFile.get('README.md') ?? 0) >= 10, `README: ${usesPerFile.get('README.md')} uses checked`)
  t.ok((usesPerFile.get('docs/api.md') ?? 0) >= 30, `docs/api.md: ${usesPerFile.get('docs/api.md')} uses checked`)
  t.same(unset, [], 'no variable is used before its page sets it')
})
