import fs from 'node:fs'

// Process identity from /proc. A pid alone can be recycled; pid + start time (clock ticks since boot,
// field 22 of /proc/<pid>/stat) cannot, so a lease never passes to a stranger that got the same pid.

// One reusable buffer: this runs on every bind decision, and readFileSync would add an fstat and an allocation.
const statBuffer = Buffer.alloc(4096)

export function processStartTime(pid: number): number | null {
  let stat: string
  try {
    const fd = fs.openSync(`/proc/${pid}/stat`, 'r')
    try {
      stat = statBuffer.toString('latin1', 0, fs.readSync(fd, statBuffer, 0, statBuffer.length, 0))
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return null
  }
  // comm (field 2) is in parentheses and may itself contain spaces and ')': split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const start = Number(rest[19])
  if (rest[0] === 'Z' || rest[0] === 'X') return null // a zombie holds no ports
  return Number.isFinite(start) ? start : null
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
