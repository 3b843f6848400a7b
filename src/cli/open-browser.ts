import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

/** An executable of that name on PATH, or null. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {
      // Not here.
    }
  }
  return null
}

/**
 * Hands `url` to the desktop's browser (xdg-open) when there is a desktop: a display, and xdg-open to ask. Over
 * SSH or on a console there is none, and xdg-open would start a text browser in this terminal: then nothing is
 * opened and the caller prints the link. Returns whether it was handed over.
 */
export function openInBrowser(url: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return false
  const opener = onPath('xdg-open', env)
  if (!opener) return false
  try {
    const child = spawn(opener, [url], {detached: true, stdio: 'ignore', env})
    child.on('error', () => {}) // the link is printed anyway
    child.unref()
    return true
  } catch {
    return false
  }
}
