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

export interface Opened {
  url: string
  opened: boolean
  /** Why it was not opened (no display, no xdg-open). */
  reason: string | null
}

/**
 * Hands `url` to the desktop's browser (xdg-open) when there is a desktop: a display, and xdg-open to ask. Over
 * SSH or on a console there is none, and xdg-open would start a text browser in this terminal: then nothing is
 * opened and the caller prints the link. xdg-open is not waited for: where no browser runs yet it may stay until
 * the browser it started exits.
 */
export function openInBrowser(url: string, env: NodeJS.ProcessEnv = process.env): Opened {
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return {url, opened: false, reason: 'no display (neither DISPLAY nor WAYLAND_DISPLAY is set)'}
  const opener = onPath('xdg-open', env)
  if (!opener) return {url, opened: false, reason: 'xdg-open is not installed'}
  try {
    const child = spawn(opener, [url], {detached: true, stdio: 'ignore', env})
    child.on('error', () => {}) // the link is printed anyway
    child.unref()
    return {url, opened: true, reason: null}
  } catch (error) {
    return {url, opened: false, reason: `xdg-open failed (${(error as Error).message})`}
  }
}
