import fs from 'node:fs'

// Every connection, every lease holder's exit watch (a pidfd) and the database take a file descriptor. Node
// raises its soft RLIMIT_NOFILE to the hard limit as it starts (node.cc, PlatformInit), so the soft limit a
// shell or unit set (`ulimit -Sn 64`) never binds the daemon; a low hard limit (`ulimit -n 64`) does, and
// running out must say so rather than end in an uncaught EMFILE. Imported by the daemon's entry before
// anything else: keep it free of other imports.

export interface FdLimit {
  soft: number
  hard: number
}

/** Below this the daemon may run out under an ordinary load (a few hundred leases and clients). */
export const FEW_FDS = 1024

const num = (s: string) => (s === 'unlimited' ? Infinity : Number(s))

/** This process's open-file limit, from /proc/self/limits (null where it cannot be read). */
export function openFileLimit(): FdLimit | null {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const m = line?.match(/^Max open files\s+(\S+)\s+(\S+)/)
    return m ? {soft: num(m[1]), hard: num(m[2])} : null
  } catch {
    return null
  }
}

function limitText(limit: FdLimit | null): string {
  if (!limit) return 'the open-file limit'
  return limit.soft === limit.hard ? `the open-file limit of ${limit.soft}` : `the open-file limit of ${limit.soft} (hard ${limit.hard})`
}

/** The clear line for an error that is the process or the system running out of descriptors; null for any other error. */
export function fdExhaustion(error: unknown, limit: FdLimit | null = openFileLimit()): string | null {
  const code = (error as NodeJS.ErrnoException)?.code
  const call = (error as NodeJS.ErrnoException)?.syscall
  const where = call ? ` (${call})` : ''
  if (code === 'EMFILE') {
    return `out of file descriptors${where}: the daemon reached ${limitText(limit)}; raise it where the daemon is started ` +
      `(ulimit -n ${Math.max(FEW_FDS, 4 * (limit?.hard ?? 256))}, or LimitNOFILE= in a systemd unit)`
  }
  if (code === 'ENFILE') return `out of file descriptors${where}: the system's file table is full (fs.file-max); close programs or raise it`
  return null
}

/** A warning for the log when the limit is low enough to matter, else null. */
export function lowLimitWarning(limit: FdLimit | null = openFileLimit()): string | null {
  if (!limit || limit.soft >= FEW_FDS) return null
  return `warning: ${limitText(limit)} is low: every connection and every lease holder's exit watch takes a descriptor; ` +
    `raise it (ulimit -n ${FEW_FDS}, or LimitNOFILE= in a systemd unit) if the daemon runs out`
}

/**
 * Out of descriptors, a listener drops each new connection silently (libuv accepts and closes it to clear the
 * backlog) and a holder's exit watch falls back to the reaper: nothing throws. So look now and then: at 90% of
 * the limit, or when the look itself cannot open the directory, say so. Returns the stop.
 */
export function watchFdUse(report: (line: string) => void, everyMs = 10_000): () => void {
  const limit = openFileLimit()
  if (!limit || !Number.isFinite(limit.soft)) return () => {}
  const timer = setInterval(() => {
    let used: number
    try {
      used = fs.readdirSync('/proc/self/fd').length
    } catch (error) {
      const line = fdExhaustion(error, limit)
      if (line) report(line)
      return
    }
    if (used >= 0.9 * limit.soft) report(`${used} of ${limit.soft} file descriptors in use: near ${limitText(limit)}, new connections will be dropped; raise it (ulimit -n ${Math.max(FEW_FDS, 4 * limit.hard)}, or LimitNOFILE= in a systemd unit)`)
  }, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}
