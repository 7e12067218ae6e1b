// Where the C headers of a Node binary are, so native addons (better-sqlite3) compile against them
// without downloading anything: node-gyp otherwise fetches the headers from the Node.js website,
// and a machine that reaches only the npm registry cannot. An official build keeps them in
// <prefix>/include/node beside <prefix>/bin/node; the npm package `node` keeps them in its
// platform package (node_modules/node/node_modules/node-<os>-<arch>/include/node).
// Usage: node scripts/node-headers.mjs   prints the folder for the running node (empty if none).
import { existsSync, readdirSync, realpathSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The folder to give npm as `nodedir` for this node binary, or undefined when it has no headers. */
export function nodeHeadersDir(execPath = process.execPath) {
  // node_modules/.bin/node is a link: the headers are found from the binary's real place.
  const prefix = resolve(dirname(realpathSync(execPath)), '..')
  const candidates = [prefix]
  const nested = join(prefix, 'node_modules')
  if (existsSync(nested)) {
    for (const name of readdirSync(nested)) if (name.startsWith('node-')) candidates.push(join(nested, name))
  }
  return candidates.find((dir) => existsSync(join(dir, 'include', 'node', 'node_version.h')))
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${nodeHeadersDir() ?? ''}\n`)
}
