// Runs a bench script (TypeScript) with tsx registered in this thread, rather than with
// `node --import tsx`: worker threads inherit command-line flags, so the product's day reader,
// compiled and needing no loader, would start tsx's (bench/lib/product.ts).
import { register } from 'tsx/esm/api'
import { pathToFileURL } from 'node:url'

register()
const [script, ...args] = process.argv.slice(2)
process.argv = [process.argv[0], script, ...args]
await import(pathToFileURL(script).href)
