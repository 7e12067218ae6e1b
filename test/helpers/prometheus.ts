// A strict reader of the Prometheus text exposition format 0.0.4, for tests. Throws on anything a
// Prometheus server would reject or misread: a sample before its # TYPE, a sample name that does
// not belong to the current family, a bad label block, an unparsable value, a duplicate series,
// a histogram without +Inf, _sum or _count, or with decreasing buckets.

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'
  help: string
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const SUFFIXES: Record<Family['type'], string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
}

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any letter case; prom-client writes "Nan". */
function parseValue(text: string, line: number): number {
  const lower = text.toLowerCase()
  if (lower === '+inf' || lower === 'inf') return Infinity
  if (lower === '-inf') return -Infinity
  if (lower === 'nan') return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value ${JSON.stringify(text)}`)
  return Number(text)
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < text.length) {
    const eq = text.indexOf('=', i)
    if (eq < 0) throw new Error(`line ${line}: label without =`)
    const name = text.slice(i, eq).trim()
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name ${JSON.stringify(name)}`)
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`)
    let value = ''
    let j = eq + 2
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j]
        if (next === 'n') value += '\n'
        else if (next === '\\' || next === '"') value += next
        else throw new Error(`line ${line}: bad escape \\${next}`)
      } else value += text[j]
    }
    if (j >= text.length) throw new Error(`line ${line}: unterminated label value`)
    if (name in labels) throw new Error(`line ${line}: duplicate label ${name}`)
    labels[name] = value
    i = j + 1
    if (text[i] === ',') i++
    else if (i < text.length) throw new Error(`line ${line}: expected , after label`)
  }
  return labels
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  let current: Family | undefined
  text.split('\n').forEach((raw, index) => {
    const line = index + 1
    if (raw === '') return
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(raw)
    if (meta) {
      const [, kind, name, rest = ''] = meta
      if (!NAME.test(name!)) throw new Error(`line ${line}: bad metric name ${name}`)
      let family = families.get(name!)
      if (!family) {
        family = { name: name!, type: 'untyped', help: '', samples: [] }
        families.set(name!, family)
      } else if (current !== family) throw new Error(`line ${line}: family ${name} split in two`)
      if (kind === 'TYPE') {
        if (!(rest in SUFFIXES)) throw new Error(`line ${line}: bad type ${rest}`)
        if (family.samples.length > 0) throw new Error(`line ${line}: # TYPE after samples of ${name}`)
        family.type = rest as Family['type']
      } else family.help = rest
      current = family
      return
    }
    if (raw.startsWith('#')) return
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(raw)
    if (!m) throw new Error(`line ${line}: not a sample: ${JSON.stringify(raw)}`)
    const [, name, labelText = '', valueText] = m
    if (!current) throw new Error(`line ${line}: sample ${name} before any # TYPE`)
    const suffix = SUFFIXES[current.type].find((s) => `${current!.name}${s}` === name)
    if (suffix === undefined) throw new Error(`line ${line}: sample ${name} does not belong to ${current.type} ${current.name}`)
    const labels = parseLabels(labelText, line)
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) throw new Error(`line ${line}: duplicate series ${key}`)
    seen.add(key)
    current.samples.push({ name: name!, labels, value: parseValue(valueText!, line) })
  })
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family)
  return families
}

function checkHistogram(family: Family): void {
  const groups = new Map<string, Sample[]>()
  for (const s of family.samples) {
    const { le: _le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  for (const [key, samples] of groups) {
    const buckets = samples.filter((s) => s.name.endsWith('_bucket'))
    const inf = buckets.find((s) => s.labels.le === '+Inf')
    const count = samples.find((s) => s.name.endsWith('_count'))
    if (!inf || !count || !samples.some((s) => s.name.endsWith('_sum'))) {
      throw new Error(`histogram ${family.name}${key}: needs a +Inf bucket, _sum and _count`)
    }
    if (inf.value !== count.value) throw new Error(`histogram ${family.name}${key}: +Inf bucket ≠ _count`)
    let previous = -Infinity
    for (const b of buckets.sort((a, b) => parseValue(a.labels.le!, 0) - parseValue(b.labels.le!, 0))) {
      if (b.value < previous) throw new Error(`histogram ${family.name}${key}: buckets decrease`)
      previous = b.value
    }
  }
}

/** The value of the one sample with exactly these labels (a subset match for `le`-free series); 0 when absent. */
export function sampleValue(families: Map<string, Family>, sampleName: string, labels: Record<string, string> = {}): number {
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name !== sampleName) continue
      const keys = Object.keys(labels)
      if (keys.every((k) => s.labels[k] === labels[k]) && Object.keys(s.labels).length === keys.length) return s.value
    }
  }
  return 0
}
