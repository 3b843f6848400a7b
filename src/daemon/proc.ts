import fs from 'node:fs'
import {startTimeOfStat} from '../shared/proc-stat.js'

// Process identity from /proc. A pid alone can be recycled; pid + start time (clock ticks since boot,
// field 22 of /proc/<pid>/stat) cannot, so a lease never passes to a stranger that got the same pid.

// One reusable buffer: this runs on every bind decision.
const buffer = Buffer.alloc(4096)

// A process seen once keeps an open /proc/<pid>/statm, with its start time read once. The open file stays
// tied to that very process: a read fails (ESRCH) once it is gone, even if its pid now belongs to another,
// and shows no memory (all zeros) once it is a zombie. So a later check is one pread of a short file instead
// of opening and parsing stat, a tenth of the cost (docs/performance.md, History). Bounded: the oldest is closed first.
const MAX_PINNED = 128
const pinned = new Map<number, {fd: number; start: number}>()

function readFile(fd: number): number {
  try {
    return fs.readSync(fd, buffer, 0, buffer.length, 0)
  } catch {
    return 0
  }
}

function openProc(pid: number, file: string): number | null {
  try {
    return fs.openSync(`/proc/${pid}/${file}`, 'r')
  } catch {
    return null
  }
}

/** Field 22 (start time) of /proc/<pid>/stat, or null if the process is gone or a zombie. */
function readStartTime(pid: number): number | null {
  const fd = openProc(pid, 'stat')
  if (fd === null) return null
  const n = readFile(fd)
  fs.closeSync(fd)
  return startTimeOfStat(buffer, n)
}

/** Still running: readable (not gone) and with memory (not a zombie; its first field, the size, is not 0). */
function stillRunning(fd: number): boolean {
  return readFile(fd) > 0 && buffer[0] !== 0x30
}

function unpin(pid: number): void {
  const kept = pinned.get(pid)
  if (kept === undefined) return
  pinned.delete(pid)
  fs.closeSync(kept.fd)
}

// Pinned processes seen to have died, by pid, until the coordinator takes them. A newcomer with the same pid
// and start time (a pid recycled within one 10 ms tick) cannot be told from the dead one by what the store
// keeps, so the dead one's leases must go before the newcomer gets any: the coordinator takes this list right
// after it reads the asker's start time, and on every reaper pass.
const died = new Map<number, number>()

function buried(pid: number, start: number): void {
  if (died.size >= MAX_PINNED) died.delete(died.keys().next().value!)
  died.set(pid, start)
}

const NONE_DIED: readonly [pid: number, start: number][] = []

/** The (pid, start time) of pinned processes found dead since the last call (on every decision: nothing built when none). */
export function takeDied(): readonly [pid: number, start: number][] {
  if (died.size === 0) return NONE_DIED
  const out = [...died]
  died.clear()
  return out
}

export function processStartTime(pid: number): number | null {
  const kept = pinned.get(pid)
  if (kept !== undefined) {
    if (stillRunning(kept.fd)) return kept.start
    unpin(pid) // gone or a zombie: whoever has this pid now is another process, read afresh
    buried(pid, kept.start)
  }
  // Open first, read the start time, then check the open file still reads: the pid cannot have passed to
  // another process while the one we opened was alive, so the start time is that process's.
  const fd = openProc(pid, 'statm')
  if (fd === null) return null
  const start = readStartTime(pid)
  if (start === null || !stillRunning(fd)) {
    fs.closeSync(fd)
    return null
  }
  if (pinned.size >= MAX_PINNED) unpin(pinned.keys().next().value!)
  pinned.set(pid, {fd, start})
  return start
}

export function isSameProcessAlive(pid: number, start: number | null): boolean {
  // Start times count clock ticks (10 ms): a pid that passes to a new process within one tick looks the same
  // by pid + start time. A pinned file does not: if the process we pinned was the one asked about and its file
  // no longer reads, that process is gone, whoever holds its pid now.
  const kept = pinned.get(pid)
  if (kept !== undefined && start !== null && kept.start === start && !stillRunning(kept.fd)) {
    unpin(pid)
    buried(pid, start)
    return false
  }
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

function netns(file: string): string | null {
  try {
    const st = fs.statSync(file)
    return `${st.dev}:${st.ino}`
  } catch {
    return null
  }
}

const ownNetns = netns('/proc/self/ns/net')

/**
 * Whether this process lives in another network namespace than the daemon: its ports are not the ones the
 * daemon sees or hands out (a command under `unshare -n`, a container), so its binds are not ours to decide.
 * Unknown (no such process, /proc unreadable) counts as the same.
 */
export function inOtherNetwork(pid: number): boolean {
  const theirs = netns(`/proc/${pid}/ns/net`)
  return theirs !== null && ownNetns !== null && theirs !== ownNetns
}

/**
 * The effective uid a process runs as, or null when it is gone. From the Uid line of /proc/<pid>/status, not
 * the owner of /proc/<pid>: a process that made itself non-dumpable shows that directory as root's.
 */
export function ownerOf(pid: number): number | null {
  try {
    const m = /^Uid:\s+\d+\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}
