import fs from 'node:fs'
import type {Listener} from '../protocol/types.js'
import {commandLine} from './proc.js'
import {parseProcNet, type RawListener} from '../shared/proc-net.js'

export type {RawListener}

// What is really bound, read from the kernel's tables (never by running lsof/ss). Only listeners on
// loopback or wildcard addresses count: `localhost` is one namespace, so [::1]:5173 makes 127.0.0.1:5173 taken.

export function isLocalAddress(address: string): boolean {
  return address === '0.0.0.0' || address.startsWith('127.') || address === '::' || address === '::1' ||
    address === '0:0:0:0:0:0:0:0' || address.startsWith('::ffff:127.') || address === '::ffff:0.0.0.0'
}

async function readTable(file: string, family: 'ipv4' | 'ipv6', busy: Set<number>): Promise<RawListener[]> {
  try {
    return parseProcNet(await fs.promises.readFile(file, 'latin1'), family, busy)
  } catch {
    return [] // no IPv6 in this kernel or namespace
  }
}

export interface Snapshot {
  at: number
  ports: Map<number, RawListener[]>
  /** Local ports of sockets that are not listening (see parseProcNet). */
  busy: Set<number>
}

/**
 * The kernel's listeners, cached. Reading /proc/net/tcp costs milliseconds whatever the number of sockets
 * (the kernel walks every bucket of its connection hash, then prints every socket: ~12 ms for both files on
 * the development VM, ~20 ms with a few thousand TIME_WAIT leftovers of a test run), so reads run off the
 * event loop in libuv's pool, concurrent callers share one read, and bind decisions use a snapshot at most
 * `maxAgeMs` old (1 s by default). A listener newer than the snapshot is caught by the interceptor: the
 * kernel's EADDRINUSE in its own family, its probe of the other family. With 250 ms, four reads a second
 * under a steady stream of binds cost the daemon ~15% of its decisions/s once a test run's TIME_WAIT
 * leftovers were in the table.
 */
export class SocketTable {
  private last: Snapshot = {at: 0, ports: new Map(), busy: new Set()}
  private inflight: Promise<Snapshot> | null = null

  constructor(readonly maxAgeMs: number) {}

  /** The latest snapshot, without reading. */
  get current(): Snapshot {
    return this.last
  }

  private inflightAt = 0

  // Strictly after `since`: a read begun in the same millisecond may have begun before the event.
  private isFresh(maxAgeMs: number, since = 0): boolean {
    return Date.now() - this.last.at <= maxAgeMs && this.last.at > since
  }

  /**
   * A snapshot no older than `maxAgeMs`, and read no earlier than `since`; 0 means read now (joining a read
   * already under way). In its last quarter of life a snapshot is still answered with but a read starts
   * behind it, so under steady use a decision seldom waits the milliseconds a read takes.
   */
  async fresh(maxAgeMs = this.maxAgeMs, since = 0): Promise<Snapshot> {
    const now = this.freshNow(maxAgeMs, since)
    if (now) return now
    // "Now" must see what the caller saw happen before asking: a read already under way may have passed
    // the caller's new listener by, so it gets a read of its own (found by the soak: a port just bound
    // reported unbound).
    // The same for a read under way that began before `since`.
    return maxAgeMs <= 0 || (this.inflight !== null && this.inflightAt <= since) ? this.read() : this.refresh()
  }

  /** The snapshot `fresh` would answer with at once, or undefined when it would have to read first. */
  freshNow(maxAgeMs = this.maxAgeMs, since = 0): Snapshot | undefined {
    if (maxAgeMs <= 0 || !this.isFresh(maxAgeMs, since)) return undefined
    if (!this.isFresh(maxAgeMs * 0.75)) void this.refresh()
    return this.last
  }

  private refresh(): Promise<Snapshot> {
    if (this.inflight === null) {
      this.inflightAt = Date.now()
      this.inflight = this.read().finally(() => { this.inflight = null })
    }
    return this.inflight
  }

  private async read(): Promise<Snapshot> {
    const at = Date.now()
    const busy = new Set<number>()
    const [v4, v6] = await Promise.all([readTable('/proc/net/tcp', 'ipv4', busy), readTable('/proc/net/tcp6', 'ipv6', busy)])
    const ports = new Map<number, RawListener[]>()
    for (const l of [...v4, ...v6]) {
      if (!isLocalAddress(l.address)) continue
      const list = ports.get(l.port)
      if (list) list.push(l)
      else ports.set(l.port, [l])
    }
    const snapshot = {at, ports, busy}
    // Reads of their own overlap the shared one: an older read finishing last must not replace a newer one.
    if (at >= this.last.at) this.last = snapshot
    return snapshot
  }
}

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
