import fs from 'node:fs'
import path from 'node:path'
import {projectOf} from '../shared/project.js'

// What `stop` and the project checks read of other processes of this user, from /proc. The client side only:
// the daemon keeps its own, faster readers (src/daemon/proc.ts).

export interface ProcInfo {
  pid: number
  ppid: number
  pgid: number
  /** Effective uid, as the daemon's holder check reads it. */
  uid: number | null
}

/** ppid and process group from /proc/<pid>/stat (fields 4 and 5, counted after comm's last ')'); null once gone or a zombie. */
export function procInfo(pid: number): ProcInfo | null {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return null
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  if (fields[0] === 'Z' || fields[0] === 'X') return null
  return {pid, ppid: Number(fields[1]), pgid: Number(fields[2]), uid: uidOf(pid)}
}

function uidOf(pid: number): number | null {
  try {
    const m = /^Uid:\s+\d+\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

export function isOurs(info: ProcInfo): boolean {
  return info.uid !== null && info.uid === process.geteuid?.()
}

/** Every live process now (this user's and others'); one pass over /proc. */
export function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const info = procInfo(Number(name))
    if (info) out.push(info)
  }
  return out
}

/** This process and its ancestors up to pid 1: never to be signalled by a stop this process makes. */
export function ownLine(): Set<number> {
  const line = new Set<number>()
  for (let pid = process.pid; pid > 1 && !line.has(pid);) {
    line.add(pid)
    const info = procInfo(pid)
    if (!info) break
    pid = info.ppid
  }
  return line
}

/** The process and everything below it, from one snapshot of /proc. */
export function withDescendants(root: number, all: ProcInfo[]): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>()
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p])
  const out: ProcInfo[] = []
  const self = all.find((p) => p.pid === root)
  const queue = self ? [self] : []
  while (queue.length) {
    const p = queue.shift()!
    out.push(p)
    queue.push(...(byParent.get(p.pid) ?? []))
  }
  return out
}

/** The project a process belongs to by the same rule as everyone's: its STYXY_PROJECT, else its working directory's worktree. */
export function projectOfProcess(pid: number): string | null {
  let cwd: string
  try {
    cwd = fs.readlinkSync(`/proc/${pid}/cwd`)
  } catch {
    return null
  }
  let forced: string | undefined
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    forced = env.find((e) => e.startsWith('STYXY_PROJECT='))?.slice('STYXY_PROJECT='.length) || undefined
  } catch {
    // Unreadable environment: the working directory decides.
  }
  return projectOf(path.resolve(cwd), forced ? {STYXY_PROJECT: forced} : {})
}
