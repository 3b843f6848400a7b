import fs from 'node:fs'

// Process identity from /proc. A pid alone can be recycled; pid + start time (clock ticks since boot,
// field 22 of /proc/<pid>/stat) cannot, so a lease never passes to a stranger that got the same pid.

// One reusable buffer: this runs on every bind decision.
const statBuffer = Buffer.alloc(4096)

// Each process's stat file is opened once and kept: the open file stays tied to that very process (a read
// fails with ESRCH once it is gone, even if its pid now belongs to another), so a later check is one pread
// instead of open, read and close. Bounded: the oldest is closed first.
const MAX_PINNED = 128
const pinned = new Map<number, number>()

/** Field 22 (start time) of the stat file open on `fd`, or null if the process is gone or a zombie. */
function readStart(fd: number): number | null {
  let n: number
  try {
    n = fs.readSync(fd, statBuffer, 0, statBuffer.length, 0)
  } catch {
    return null
  }
  // comm (field 2) is in parentheses and may itself contain spaces and ')': fields count from the last ')'.
  let i = statBuffer.lastIndexOf(0x29, n - 1) + 2
  if (i < 2 || i >= n) return null
  const state = statBuffer[i]
  if (state === 0x5a || state === 0x58) return null // Z or X: a zombie holds no ports
  for (let spaces = 0; spaces < 19 && i < n; i++) if (statBuffer[i] === 0x20) spaces++
  let start = 0
  const first = i
  for (; i < n && statBuffer[i] >= 0x30 && statBuffer[i] <= 0x39; i++) start = start * 10 + statBuffer[i] - 0x30
  return i > first ? start : null
}

function unpin(pid: number): void {
  const fd = pinned.get(pid)
  if (fd === undefined) return
  pinned.delete(pid)
  fs.closeSync(fd)
}

export function processStartTime(pid: number): number | null {
  const kept = pinned.get(pid)
  if (kept !== undefined) {
    const start = readStart(kept)
    if (start !== null) return start
    unpin(pid) // gone: whoever has this pid now is another process, read afresh
  }
  let fd: number
  try {
    fd = fs.openSync(`/proc/${pid}/stat`, 'r')
  } catch {
    return null
  }
  const start = readStart(fd)
  if (start === null) {
    fs.closeSync(fd)
    return null
  }
  if (pinned.size >= MAX_PINNED) unpin(pinned.keys().next().value!)
  pinned.set(pid, fd)
  return start
}

export function isSameProcessAlive(pid: number, start: number | null): boolean {
  const now = processStartTime(pid)
  return now !== null && (start === null || now === start)
}

export function commandLine(pid: number): string | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    const line = raw.replace(/\0+$/, '').replace(/\0/g, ' ')
    return line || null
  } catch {
    return null
  }
}
