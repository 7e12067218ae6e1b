// "Was this module started directly?" — through a symlinked bin, or a path that needs URL escaping.
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

export function isMainModule(moduleUrl: string): boolean {
  const entry = process.argv[1]
  if (!entry) return false
  try {
    return pathToFileURL(realpathSync(entry)).href === moduleUrl
  } catch {
    return false
  }
}
