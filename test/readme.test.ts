// The docs stay true for a newcomer: every configuration variable has its row (and the schema's
// default) in the one full table, every route is documented, and every relative link and anchor in
// the Markdown files — and every docs/…#section a comment cites — resolves inside the repository.
import t from 'tap'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EnvSchema } from '../src/config.js'
import { buildTestApp } from './helper.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string) => readFileSync(join(root, path), 'utf8')

/** The Markdown a reader of the repository meets: README, CONTRIBUTING, the manual, the bench notes. */
function markdownFiles(): string[] {
  const inFolder = (folder: string) =>
    readdirSync(join(root, folder))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `${folder}/${name}`)
  return ['README.md', 'CONTRIBUTING.md', ...inFolder('docs'), ...inFolder('bench')]
}

/** The text of a `## ` section, up to the next one. */
function section(text: string, title: string): string {
  const start = text.indexOf(`\n## ${title}\n`)
  if (start < 0) throw new Error(`no section "## ${title}"`)
  const next = text.indexOf('\n## ', start + 1)
  return text.slice(start, next < 0 ? undefined : next)
}

/** Lines outside fenced code blocks, each with its line number. */
function proseLines(text: string): Array<{ line: string; number: number }> {
  const lines: Array<{ line: string; number: number }> = []
  let fence: string | undefined
  for (const [i, line] of text.split('\n').entries()) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1]
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined
      continue
    }
    if (fence === undefined) lines.push({ line, number: i + 1 })
  }
  return lines
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, each space a '-'. */
function githubSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-')
}

/** Every anchor a Markdown file offers; a repeated heading gets -1, -2… as on GitHub. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const { line } of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1]
    if (heading === undefined) continue
    const slug = githubSlug(heading)
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    anchors.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return anchors
}

interface Link {
  file: string
  number: number
  target: string
}

/** Inline links `[text](target)` outside code (fenced blocks and code spans). */
function linksOf(file: string, text: string): Link[] {
  const links: Link[] = []
  for (const { line, number } of proseLines(text)) {
    const prose = line.replace(/`[^`]*`/g, '')
    for (const m of prose.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) links.push({ file, number, target: m[1]! })
  }
  return links
}

/** Why a link does not resolve inside the repository, or undefined when it does. */
function linkProblem(from: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return /^(https?|mailto):/i.test(target) ? undefined : 'not a web or repository link'
  const [path = '', anchor] = target.split('#', 2)
  const file = path === '' ? join(root, from) : resolve(root, dirname(from), decodeURIComponent(path))
  const inside = relative(root, file)
  if (inside.startsWith('..') || isAbsolute(inside)) return 'points outside the repository'
  if (!existsSync(file)) return 'no such file'
  if (anchor === undefined) return undefined
  if (!file.endsWith('.md') || statSync(file).isDirectory()) return 'an anchor into something that is not Markdown'
  return anchorsOf(readFileSync(file, 'utf8')).has(anchor) ? undefined : `no heading with anchor #${anchor}`
}

t.test('githubSlug follows GitHub: lowercase, punctuation dropped, spaces to -', async (t) => {
  t.equal(githubSlug('Ingest → batch → read'), 'ingest--batch--read')
  t.equal(githubSlug('USD → PLN: the NBP rate'), 'usd--pln-the-nbp-rate')
  t.equal(githubSlug('The CLI'), 'the-cli')
  t.equal(githubSlug('`GET /batch/storage` (read)'), 'get-batchstorage-read')
  t.equal(githubSlug('Fault isolation per client'), 'fault-isolation-per-client')
  t.same([...anchorsOf('# A\n## Notes\n```\n## Not a heading\n```\n### Notes\n')], ['a', 'notes', 'notes-1'])
})

t.test('every environment variable has one row in the full configuration table, with the schema default', async (t) => {
  const table = section(read('docs/configuration.md'), 'Variables')
  const rows = table.split('\n').filter((line) => line.startsWith('| `'))
  const documented = new Map<string, string>()
  for (const row of rows) {
    const [names = '', defaults = ''] = row.slice(1).split(' | ').map((cell) => cell.trim())
    const parts = defaults === '–' ? [] : defaults.split(/,\s*/)
    const variables = [...names.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!)
    t.ok(variables.length > 0, `a row names its variable: ${row.slice(0, 60)}`)
    for (const [i, name] of variables.entries()) {
      t.notOk(documented.has(name), `${name} has one row`)
      documented.set(name, parts.length === variables.length ? parts[i]! : defaults)
    }
  }
  const properties = EnvSchema.properties as Record<string, { default?: unknown }>
  const names = Object.keys(properties)
  t.ok(names.length >= 30, `${names.length} variables in the schema`)
  for (const name of names) {
    t.ok(documented.has(name), `${name} is in the table`)
    const wanted = properties[name]!.default
    const shown = documented.get(name)
    if (wanted === undefined) t.notMatch(shown ?? '', /^`[^`]*`$/, `${name}: no default claimed where the schema has none`)
    else t.equal(shown, `\`${String(wanted)}\``, `${name}: the schema's default`)
  }
  for (const name of documented.keys()) t.ok(name in properties, `${name} is a variable of the schema`)
})

t.test("the README's short table names real variables with their real defaults", async (t) => {
  const table = section(read('README.md'), 'Most-used variables')
  const rows = table.split('\n').filter((line) => line.startsWith('| `'))
  t.ok(rows.length >= 5, `${rows.length} rows`)
  t.match(table, '](docs/configuration.md#variables)', 'and it links to the full table')
  const properties = EnvSchema.properties as Record<string, { default?: unknown }>
  for (const row of rows) {
    const [names = '', defaults = ''] = row.slice(1).split(' | ').map((cell) => cell.trim())
    const variables = [...names.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!)
    const parts = defaults === '–' ? variables.map(() => '–') : defaults.split(/,\s*/)
    t.equal(parts.length, variables.length, `${names}: one default per variable, or one –`)
    for (const [i, name] of variables.entries()) {
      t.ok(name in properties, `${name} is a variable of the schema`)
      const wanted = properties[name]?.default
      t.equal(parts[i], wanted === undefined ? '–' : `\`${String(wanted)}\``, `${name}: default as in the schema`)
    }
  }
})

t.test('every route of the API is mentioned in the README or docs/api.md', async (t) => {
  const docs = read('README.md') + '\n' + read('docs/api.md')
  const { app } = await buildTestApp(t)
  const spec = app.swagger() as { paths: Record<string, Record<string, unknown>> }
  const paths = Object.keys(spec.paths).filter((path) => !path.startsWith('/docs'))
  t.ok(paths.length >= 20, `${paths.length} routes`)
  for (const path of paths) {
    // A route counts as documented when the docs show it, with its parameters or with an example value.
    const pattern = new RegExp(path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/\\s?`"\']+'))
    t.match(docs, pattern, path)
  }
})

t.test('every relative link and anchor in the Markdown files resolves inside the repository', async (t) => {
  const files = markdownFiles()
  for (const required of ['README.md', 'CONTRIBUTING.md', 'bench/README.md', 'docs/api.md', 'docs/configuration.md', 'docs/data-model.md', 'docs/influxdb.md', 'docs/operations.md']) {
    t.ok(files.includes(required), `${required} is checked`)
  }
  const links = files.flatMap((file) => linksOf(file, read(file)))
  t.ok(links.filter((l) => !/^[a-z]+:/i.test(l.target)).length >= 50, `${links.length} links checked`)
  const broken = links
    .map((link) => ({ link, problem: linkProblem(link.file, link.target) }))
    .filter((x) => x.problem !== undefined)
    .map(({ link, problem }) => `${link.file}:${link.number} ${link.target}: ${problem}`)
  t.same(broken, [], 'no broken link')
  // The contract and the checked facts live outside the repository: the docs say it in their own words.
  for (const file of files) t.notMatch(read(file), /\.\.\/shared|\bSPEC(\.md|\s*§)|\bFACTS\.md/, `${file} points nowhere outside the repository`)
})

t.test('linkProblem tells a broken link from a good one', async (t) => {
  t.equal(linkProblem('README.md', 'docs/api.md#voids'), undefined)
  t.equal(linkProblem('docs/api.md', '../openapi.yaml'), undefined)
  t.equal(linkProblem('docs/api.md', '#csv'), undefined)
  t.equal(linkProblem('docs/api.md', 'https://example.org/x'), undefined)
  t.match(linkProblem('README.md', '../shared/SPEC.md'), /outside the repository/)
  t.match(linkProblem('README.md', 'docs/nope.md'), /no such file/)
  t.match(linkProblem('README.md', 'docs/api.md#nope'), /no heading/)
  t.match(linkProblem('README.md', 'file:///etc/passwd'), /not a web or repository link/)
})

/** Sections that comments in the code cite; renaming one of them breaks those comments. */
const CITED_SECTIONS = [
  'docs/data-model.md#money',
  'docs/data-model.md#the-business-day',
  'docs/data-model.md#exchange-rates',
  'docs/data-model.md#the-batch',
  'docs/data-model.md#modes',
  'docs/data-model.md#tables',
  'docs/operations.md#health',
  'docs/operations.md#metrics',
  'docs/operations.md#alerts',
  'docs/operations.md#logs',
  'docs/operations.md#kubernetes',
  'docs/operations.md#data-lifecycle',
  'docs/operations.md#the-cli',
  'docs/operations.md#scheduler',
  'docs/api.md#authentication',
  'docs/api.md#errors',
  'docs/api.md#csv',
  'docs/api.md#ingest',
  'docs/api.md#voids',
  'docs/configuration.md#variables',
  'docs/influxdb.md#dialects',
  'docs/influxdb.md#point-layout',
]

/** `docs/….md#section` (or README/CONTRIBUTING/bench README) cited anywhere in the code, scripts and manifests. */
function citationsInCode(): Array<{ file: string; target: string }> {
  const found: Array<{ file: string; target: string }> = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) walk(path)
      // This file's own examples include a broken link on purpose; its list is checked above.
      else if (path === 'test/readme.test.ts') continue
      else if (/\.(ts|mts|mjs|js|sh|ya?ml|json)$/.test(entry.name) || entry.name === 'run' || entry.name === 'Dockerfile') {
        for (const m of read(path).matchAll(/\b((?:docs\/[\w-]+|bench\/README|README|CONTRIBUTING)\.md#[\w-]+)/g)) found.push({ file: path, target: m[1]! })
      }
    }
  }
  for (const dir of ['src', 'test', 'scripts', 'bench', 'deploy', '.ci']) walk(dir)
  if (existsSync(join(root, 'Dockerfile'))) {
    for (const m of read('Dockerfile').matchAll(/\b((?:docs\/[\w-]+|README)\.md#[\w-]+)/g)) found.push({ file: 'Dockerfile', target: m[1]! })
  }
  return found
}

t.test('the sections the code cites exist', async (t) => {
  const cited = [...CITED_SECTIONS.map((target) => ({ file: 'test/readme.test.ts', target })), ...citationsInCode()]
  t.ok(cited.length >= CITED_SECTIONS.length, `${cited.length} citations`)
  const broken = cited.map((c) => ({ ...c, problem: linkProblem('README.md', c.target) })).filter((c) => c.problem !== undefined)
  t.same(broken.map((c) => `${c.file}: ${c.target}: ${c.problem}`), [], 'every cited section resolves')
})
