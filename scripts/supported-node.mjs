// Runs a command on a Node this service supports. The README promises `npm ci && npm start` and
// `npm test` on a fresh machine, and ours come with Node 20: past its end of life, and better-sqlite3
// 13 (the SQLite driver) crashes on it. There, the npm scripts that load the service go through this
// file, which installs node@<IMAGE_NODE_MAJOR> from the npm registry into .node/ (once; the package
// `node` ships the official binary) and runs the command with it first on PATH. On a supported Node
// it runs the command as it is.
//
//   node scripts/supported-node.mjs <command> [args…]   run the command on a supported Node
//   node scripts/supported-node.mjs --bin-dir            print the folder to put first on PATH
//                                                        (an empty line when none is needed)
//
// USAGE_BATCH_EXACT_NODE=1 accepts only the image's major (CI tests exactly what the image ships).
// Plain JavaScript on purpose: it must run on the old Node it replaces.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { constants } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The Node major of the Docker image (ARG NODE_IMAGE in the Dockerfile; a test keeps them equal). */
export const IMAGE_NODE_MAJOR = 24
/** The oldest major the dependencies accept (package.json engines). */
export const MIN_NODE_MAJOR = 22

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

function supported(major, exact) {
  return exact ? major === IMAGE_NODE_MAJOR : major >= MIN_NODE_MAJOR
}

/**
 * The folder holding a node binary of the image's major, installed into `<root>/.node` when
 * missing; null when the running Node is supported already.
 */
export function nodeBinDir({ exact = process.env.USAGE_BATCH_EXACT_NODE === '1', log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (supported(Number(process.versions.node.split('.')[0]), exact)) return null
  const prefix = join(root, '.node')
  const bin = join(prefix, 'node_modules', '.bin')
  if (!existsSync(join(bin, 'node'))) {
    log(`node ${process.version} is not supported here (Node ${MIN_NODE_MAJOR}+; the image runs ${IMAGE_NODE_MAJOR}): installing node@${IMAGE_NODE_MAJOR} from the npm registry into .node/ (once)`)
    execFileSync(
      'npm',
      ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', `node@${IMAGE_NODE_MAJOR}`],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    )
  }
  return bin
}

function main(argv) {
  if (argv[0] === '--bin-dir') {
    process.stdout.write(`${nodeBinDir() ?? ''}\n`)
    return
  }
  if (argv.length === 0) {
    process.stderr.write('usage: node scripts/supported-node.mjs <command> [args…] | --bin-dir\n')
    process.exit(2)
  }
  const bin = nodeBinDir()
  const env = bin ? { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` } : process.env
  const child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env })
  // This process only stands between npm and the command: signals go on to it, and its end is ours.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('error', (e) => {
    process.stderr.write(`cannot run ${argv[0]}: ${e.message}\n`)
    process.exit(127)
  })
  child.on('exit', (code, signal) => process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1)))
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2))
