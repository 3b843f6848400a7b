import fs from 'node:fs'

// The state directory holds the daemon's socket and its token: whoever can put files there can answer as our
// daemon (and learn what we run), or have the daemon chmod what a planted link points at. The CLI, the daemon
// and the interceptor (interceptor/paths.zig) apply one rule: a real directory (not a symbolic link), owned by
// the user, writable by nobody else. A directory that does not exist yet is fine: it is made 0700.

/** A state directory we will not use; the message names the path and the fix. */
export class UnsafeStateDirError extends Error {
  readonly code = 'STATE_DIR_UNSAFE'
}

/** 'missing': not there yet; 'private': ours and 0700-tight; 'loose': ours, readable by others but writable by nobody else (an older Styxy's 0755). */
export type StateDirState = 'missing' | 'private' | 'loose'

const octal = (m: number) => `0${(m & 0o777).toString(8)}`

function refuse(dir: string, why: string, fix: string): UnsafeStateDirError {
  return new UnsafeStateDirError(`the state directory ${dir} ${why}; Styxy will not use it. Fix: ${fix}`)
}

/** What `st` (an lstat of `dir`) says against trusting it, as the error to throw; null when it may be used. */
function problem(dir: string, st: fs.Stats): UnsafeStateDirError | null {
  const elsewhere = 'set STYXY_HOME to a directory of your own'
  if (st.isSymbolicLink()) {
    let target = '?'
    try { target = fs.readlinkSync(dir) } catch { /* gone meanwhile: the message still holds */ }
    return refuse(dir, `is a symbolic link (to ${target}), which another user may have planted`, `remove the link (rm ${dir}) so a private directory is made there, or ${elsewhere}`)
  }
  if (!st.isDirectory()) return refuse(dir, 'is not a directory', `move it aside (mv ${dir} ${dir}.old), or ${elsewhere}`)
  const me = process.geteuid?.() ?? st.uid
  if (st.uid !== me) return refuse(dir, `belongs to uid ${st.uid}, not to you (uid ${me}): its socket could be another user's`, `${elsewhere} (or have its owner remove it)`)
  if (st.mode & 0o022) {
    const who = st.mode & 0o002 ? 'every user' : 'its group'
    return refuse(dir, `is writable by ${who} (mode ${octal(st.mode)}): anyone there could plant a socket or token in it`, `move it aside (mv ${dir} ${dir}.unsafe) and a private one is made afresh, or ${elsewhere}`)
  }
  return null
}

/** Throws UnsafeStateDirError for a directory that may not be trusted; says what state a usable one is in. */
export function inspectStateDir(dir: string): StateDirState {
  let st: fs.Stats
  try {
    st = fs.lstatSync(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw error
  }
  const bad = problem(dir, st)
  if (bad) throw bad
  return st.mode & 0o077 ? 'loose' : 'private'
}

/**
 * Make the state directory if need be and leave it private: 0700, ours. One of ours an older version left
 * 0755 is tightened, through a descriptor opened without following links so the chmod reaches that directory
 * and nothing a link swapped in meanwhile points at. Returns true when it tightened one.
 */
export function prepareStateDir(dir: string): boolean {
  if (inspectStateDir(dir) === 'missing') {
    try {
      fs.mkdirSync(dir, {recursive: true, mode: 0o700})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
  }
  // Again: someone may have made it between the look and the mkdir (which then did nothing).
  if (inspectStateDir(dir) === 'private') return false
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW)
  try {
    const bad = problem(dir, fs.fstatSync(fd))
    if (bad) throw bad
    fs.fchmodSync(fd, 0o700)
  } finally {
    fs.closeSync(fd)
  }
  return true
}
