import fs from 'node:fs'
import path from 'node:path'
import {resolvePaths} from '../paths.js'
import {projectOf} from '../shared/project.js'
import type {RawListener} from '../shared/proc-net.js'
import {isLocalAddress} from '../kernel/tables.js'
import {ownersOf} from './socket-table.js'

// A program that found the daemon unreachable and its port taken moved itself (interceptor/nearby.zig). Once the
// daemon is back, such a server is leased as if the daemon had moved it: it shows in `list`, its port is given to
// nobody else, and its lease ends with its process. Only processes that would have asked this daemon count: ones
// under our library whose environment names this state directory. Another daemon's programs (another
// STYXY_HOME), and servers started without Styxy, stay what they are: listeners without a lease.

export interface Stray {
  pid: number
  port: number
  command: string | null
  project: string
}

function environOf(pid: number): NodeJS.ProcessEnv | null {
  try {
    const env: NodeJS.ProcessEnv = {}
    for (const entry of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = entry.indexOf('=')
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1)
    }
    return env
  } catch {
    return null
  }
}

function cwdOf(pid: number): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`)
  } catch {
    return null
  }
}

/** Whether `pid` ran under the interceptor and would have asked the daemon of `stateDir`. */
function askedUs(env: NodeJS.ProcessEnv, stateDir: string): boolean {
  const preloaded = (env.LD_PRELOAD ?? '').split(/[:\s]+/).some((lib) => path.basename(lib) === 'libstyxy_preload.so')
  return preloaded && env.STYXY_DISABLE !== '1' && path.resolve(resolvePaths(env).stateDir) === path.resolve(stateDir)
}

/**
 * The listeners of this user without a lease that a program of ours moved to by itself. The /proc walk that
 * finds a socket's process runs only when such listeners exist in the managed ports (at start, rarely any).
 */
export function findStrays(listeners: Map<number, RawListener[]>, unleased: (port: number) => boolean, stateDir: string, minPort: number, skip: ReadonlySet<number>): Stray[] {
  const uid = process.geteuid?.()
  const candidates: RawListener[] = []
  for (const [port, list] of listeners) {
    if (port < minPort || skip.has(port) || !unleased(port)) continue
    const mine = list.find((l) => l.uid === uid && isLocalAddress(l.address))
    if (mine) candidates.push(mine)
  }
  if (candidates.length === 0) return []
  const owners = ownersOf(candidates.map((l) => l.inode))
  const strays: Stray[] = []
  for (const l of candidates) {
    const owner = owners.get(l.inode)
    if (!owner || owner.pid === process.pid) continue
    const env = environOf(owner.pid)
    const cwd = cwdOf(owner.pid)
    if (!env || !cwd || !askedUs(env, stateDir)) continue
    strays.push({pid: owner.pid, port: l.port, command: owner.command, project: projectOf(cwd, env)})
  }
  return strays
}
