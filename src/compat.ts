import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {StyxyPaths} from './paths.js'

// Compatibility with the first Styxy's clients: they read the TCP token from ~/.styxy/auth.token. Writing that
// copy is opt-in (`styxy compat on`): a marker file `compat` in the state directory says so, and the daemon
// rewrites the copy from its token at every start (the only time the token can change: ensureToken makes a
// new one when the file is missing or short), so the copy follows the token without the CLI being run again.

export interface CompatPaths {
  marker: string
  dir: string
  file: string
}

export function compatPaths(paths: StyxyPaths, env: NodeJS.ProcessEnv = process.env): CompatPaths {
  const home = env.HOME || os.homedir()
  const dir = path.join(home, '.styxy')
  return {marker: path.join(paths.stateDir, 'compat'), dir, file: path.join(dir, 'auth.token')}
}

export class CompatError extends Error {}

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Refuse anything that would write the token somewhere the user did not mean: a symlink, or another user's. */
function checkOurs(p: string, st: fs.Stats, what: 'directory' | 'file'): void {
  const uid = process.geteuid?.() ?? st.uid
  if (st.isSymbolicLink()) {
    throw new CompatError(`${p} is a symlink; refusing to write the token through it. Remove it (rm ${p}) so Styxy can create a real ${what}, then run \`styxy compat on\` again`)
  }
  if (st.uid !== uid) {
    throw new CompatError(`${p} is owned by uid ${st.uid}, not you (uid ${uid}); refusing to write the token there. Remove it or give it to your user, then run \`styxy compat on\` again`)
  }
  if (what === 'directory' ? !st.isDirectory() : !st.isFile()) {
    throw new CompatError(`${p} is not a ${what}; remove it, then run \`styxy compat on\` again`)
  }
}

/** Write the token to ~/.styxy/auth.token: 0600 in a 0700 directory, never through a symlink, atomically. */
export function writeTokenCopy(cp: CompatPaths, token: string): void {
  const dirStat = lstat(cp.dir)
  if (dirStat) checkOurs(cp.dir, dirStat, 'directory')
  else fs.mkdirSync(cp.dir, {mode: 0o700})
  fs.chmodSync(cp.dir, 0o700)
  const fileStat = lstat(cp.file)
  if (fileStat) checkOurs(cp.file, fileStat, 'file')
  const tmp = `${cp.file}.${process.pid}.tmp`
  fs.rmSync(tmp, {force: true})
  // O_EXCL: a symlink planted at the temp name is not followed.
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600)
  try {
    fs.writeSync(fd, `${token}\n`)
    fs.fchmodSync(fd, 0o600)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, cp.file)
}

export function compatEnabled(cp: CompatPaths): boolean {
  return fs.existsSync(cp.marker)
}

export interface CompatStatus {
  enabled: boolean
  tokenCopy: string
  /** Whether the copy exists now (it may lag only until the next daemon start). */
  present: boolean
}

export function compatStatus(cp: CompatPaths): CompatStatus {
  return {enabled: compatEnabled(cp), tokenCopy: cp.file, present: lstat(cp.file)?.isFile() ?? false}
}

/** `styxy compat on`: the marker, then the copy of `token`. */
export function enableCompat(cp: CompatPaths, token: string): CompatStatus {
  writeTokenCopy(cp, token)
  fs.writeFileSync(cp.marker, 'the daemon copies its token to ~/.styxy/auth.token at start (styxy compat off undoes it)\n', {mode: 0o600})
  return compatStatus(cp)
}

/** `styxy compat off`: the marker and the copy go (the directory stays: it may hold the user's own files). */
export function disableCompat(cp: CompatPaths): CompatStatus {
  fs.rmSync(cp.marker, {force: true})
  const st = lstat(cp.file)
  // A symlink is removed, never followed; a file of another user's is left alone (it is not ours to delete).
  if (st && (st.isSymbolicLink() || st.uid === (process.geteuid?.() ?? st.uid))) fs.rmSync(cp.file, {force: true})
  return compatStatus(cp)
}

/** At daemon start: when compat is on, the copy is rewritten from the current token. Returns an error to log. */
export function refreshTokenCopy(paths: StyxyPaths, token: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const cp = compatPaths(paths, env)
  if (!compatEnabled(cp)) return null
  try {
    writeTokenCopy(cp, token)
    return null
  } catch (error) {
    return `compat: could not write ${cp.file}: ${(error as Error).message}`
  }
}
