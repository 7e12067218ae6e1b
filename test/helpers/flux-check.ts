// InfluxData's own Flux checker (the Flux language server compiled to wasm) loaded on Node 20.
// Its `_bg.js` does `import * as wasm from './flux-lsp-browser_bg.wasm'`, which Node 20 cannot
// import. A module hook answers that import with a small module that reads the .wasm itself,
// instantiates it with the `_bg.js` exports as its imports, and re-exports the instance's
// exports: the `_bg.js` module then runs against the instance as the bundler would have wired it.
import { register } from 'node:module'

interface FluxChecker {
  Flux: new (script: string) => { is_valid(): boolean; free(): void }
}

const HOOKS = `
import { readFileSync } from 'node:fs'
export async function load(url, context, nextLoad) {
  // The package declares no "type": without this its ESM .js would go through require(esm),
  // which refuses the module cycle between _bg.js and the wasm.
  if (url.startsWith('file:') && url.endsWith('/flux-lsp-browser_bg.js')) {
    return nextLoad(url, { ...context, format: 'module' })
  }
  if (!url.startsWith('file:') || !url.endsWith('/flux-lsp-browser_bg.wasm')) return nextLoad(url, context)
  const names = WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(new URL(url)))).map((e) => e.name)
  const bg = new URL('./flux-lsp-browser_bg.js', url).href
  const source = [
    "import * as bg from " + JSON.stringify(bg) + ";",
    "import { readFileSync } from 'node:fs';",
    // Every import of the module is a function declaration of _bg.js, hoisted and so already
    // bound although _bg.js (which imports this module) has not run yet.
    "const module = new WebAssembly.Module(readFileSync(new URL(" + JSON.stringify(url) + ")));",
    "const instance = new WebAssembly.Instance(module, { './flux-lsp-browser_bg.js': bg });",
    ...names.map((n) => "export const " + n + " = instance.exports[" + JSON.stringify(n) + "];"),
  ].join('\\n')
  return { format: 'module', source, shortCircuit: true }
}
`

let loaded: Promise<FluxChecker> | undefined

function loadChecker(): Promise<FluxChecker> {
  if (!loaded) {
    register(`data:text/javascript,${encodeURIComponent(HOOKS)}`)
    const bgUrl = import.meta.resolve('@influxdata/flux-lsp-browser/flux-lsp-browser_bg.js')
    loaded = import(bgUrl) as Promise<FluxChecker>
  }
  return loaded
}

/** True when InfluxData's checker accepts the script: syntax, types, builtin signatures. */
export async function isValidFlux(script: string): Promise<boolean> {
  const { Flux } = await loadChecker()
  const checked = new Flux(script)
  try {
    return checked.is_valid()
  } finally {
    checked.free()
  }
}
