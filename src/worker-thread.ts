// Starting a worker thread on a sibling module of the caller, compiled or not.
//
// Run from dist in production: the worker is the compiled sibling module. Run from src (tsx, in
// development, tests and the benchmark): a worker thread does not inherit tsx's loader on Node 20
// (privatenumber/tsx#354), so a two-line bootstrap registers it in the worker first.
import { Worker, type WorkerOptions } from 'node:worker_threads'

/** A worker thread running the module `name` (no extension) beside `base`, the caller's import.meta.url. */
export function startWorker(base: string, name: string, options: WorkerOptions = {}): Worker {
  const fromSource = base.endsWith('.ts')
  const url = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, base)
  if (!fromSource) return new Worker(url, options)
  const tsx = import.meta.resolve('tsx/esm/api')
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}) })`
  return new Worker(bootstrap, { ...options, eval: true })
}
