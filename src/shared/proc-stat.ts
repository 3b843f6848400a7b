import fs from 'node:fs'

// A process's start time from /proc/<pid>/stat. The daemon's proc.ts reads it into a reused buffer and keeps
// processes pinned; the client and the CLI only ask whether a process is still there, and must not load the
// daemon's code to do so.

/** Field 22 (start time) of the stat text in `stat[0, n)`, or null for a zombie or a text it cannot read. */
export function startTimeOfStat(stat: Buffer, n: number): number | null {
  // comm (field 2) is in parentheses and may itself contain spaces and ')': fields count from the last ')'.
  let i = stat.lastIndexOf(0x29, n - 1) + 2
  if (i < 2 || i >= n) return null
  const state = stat[i]
  if (state === 0x5a || state === 0x58) return null // Z or X: a zombie holds no ports
  for (let spaces = 0; spaces < 19 && i < n; i++) if (stat[i] === 0x20) spaces++
  let start = 0
  const first = i
  for (; i < n && stat[i] >= 0x30 && stat[i] <= 0x39; i++) start = start * 10 + stat[i] - 0x30
  return i > first ? start : null
}

/** The start time of a running process, or null once it is gone or a zombie (one read; nothing kept open). */
export function startTimeOf(pid: number): number | null {
  let stat: Buffer
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`)
  } catch {
    return null
  }
  return startTimeOfStat(stat, stat.length)
}
