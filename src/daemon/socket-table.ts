import fs from 'node:fs'
import type {Listener} from '../protocol/types.js'
import {commandLine} from './proc.js'
import type {RawListener} from '../shared/proc-net.js'

// Who owns a socket: its process, from the inode, asked only when someone asks who (check, scan, observe).

/** Which of our user's processes own these socket inodes (other users' /proc/<pid>/fd is unreadable). */
export function ownersOf(inodes: number[]): Map<number, {pid: number; command: string | null}> {
  const wanted = new Set(inodes.map((i) => `socket:[${i}]`))
  const found = new Map<number, {pid: number; command: string | null}>()
  if (wanted.size === 0) return found
  let pids: string[]
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    return found
  }
  for (const p of pids) {
    let fds: string[]
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      let link: string
      try {
        link = fs.readlinkSync(`/proc/${p}/fd/${fd}`)
      } catch {
        continue
      }
      if (!wanted.has(link)) continue
      const inode = Number(link.slice(8, -1))
      if (!found.has(inode)) found.set(inode, {pid: Number(p), command: commandLine(Number(p))})
    }
    if (found.size === wanted.size) break
  }
  return found
}

export function describeListeners(raw: RawListener[], owners = ownersOf(raw.map((l) => l.inode))): Listener[] {
  return raw.map((l) => ({
    address: l.address, family: l.family, inode: l.inode,
    pid: owners.get(l.inode)?.pid ?? null, command: owners.get(l.inode)?.command ?? null,
  }))
}
