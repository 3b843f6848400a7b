import fs from 'node:fs'
import path from 'node:path'
import {chromium, type Browser} from 'playwright-core'

/**
 * Debian's chromium, installed by `make test` (the Makefile's chromium step), never a browser download:
 * STYXY_CHROMIUM names another executable. Missing, the dashboard's browser tests fail saying how to get it.
 */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [env.STYXY_CHROMIUM, ...['chromium', 'chromium-browser'].flatMap((n) => (env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, n)))]
  for (const c of candidates) {
    if (!c) continue
    try {
      fs.accessSync(c, fs.constants.X_OK)
      return c
    } catch {
      // Not this one.
    }
  }
  throw new Error('no chromium executable: `make test` installs Debian\'s chromium (as root), or run `apt-get install chromium`, or set STYXY_CHROMIUM to one')
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({executablePath: chromiumPath(), headless: true})
}
