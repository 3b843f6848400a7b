import fs from 'node:fs'
import {connectionUid, parseProcNet, type Endpoint, type RawListener} from '../shared/proc-net.js'
import type {KernelAddon} from './native.js'
import type {KernelSocket} from './decode.js'

// Who holds a port, asked of the kernel at the moment of a decision. Two ways to ask: inet_diag dumps over
// NETLINK_SOCK_DIAG (the kernel filters by state and port, so a question costs what its answer holds, not
// what the host's TCP table holds), or, where the native addon cannot load or the kernel refuses netlink,
// reading /proc/net/tcp{,6} whole (milliseconds on a busy host: the reason sock_diag is the default).

export type KernelInterface = 'sock_diag' | 'proc'

export interface KernelTables {
  readonly name: KernelInterface
  /** Why the fallback is in use (null with sock_diag). */
  readonly reason: string | null
  /** Listeners on this port on a loopback or wildcard address, in either family. */
  listenersOn(port: number): RawListener[]
  /** Every listener on a loopback or wildcard address, by port. */
  listeners(): Map<number, RawListener[]>
  /** Something other than a listener (TIME_WAIT, a connection) holds the port against a bind without SO_REUSEADDR. */
  otherwiseHeld(port: number): boolean
  /**
   * Whose is the client's end of a TCP connection this process accepted (`client` its far end, `server` ours):
   * the uid of the process that made it, or null when the kernel has no such live connection.
   */
  connectionOwner(client: Endpoint, server: Endpoint): number | null
  /** Sockets the kernel described to us, over the daemon's life: a decision's cost in sockets examined. */
  readonly examined: number
  readonly queries: number
}

/** Only listeners on loopback or wildcard addresses count: `localhost` is one namespace, so [::1]:5173 makes 127.0.0.1:5173 taken. */
export function isLocalAddress(address: string): boolean {
  return address === '0.0.0.0' || address.startsWith('127.') || address === '::' || address === '::1' ||
    address === '0:0:0:0:0:0:0:0' || address.startsWith('::ffff:127.') || address === '::ffff:0.0.0.0'
}

/** A v4-mapped pair (a dual-stack listener's view of an IPv4 client) names IPv4 sockets: the client's is one. */
function unmapped(client: Endpoint, server: Endpoint): [Endpoint, Endpoint] {
  const v4 = (a: string) => (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a) ? a.slice(7) : null)
  const [c, s] = [v4(client.address), v4(server.address)]
  return c && s ? [{...client, address: c}, {...server, address: s}] : [client, server]
}

/** TCP states whose socket still has its owner: ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT. */
const OWNED_STATES = new Set([1, 4, 5, 8])

export function byPort(list: Iterable<RawListener>): Map<number, RawListener[]> {
  const ports = new Map<number, RawListener[]>()
  for (const l of list) {
    if (!isLocalAddress(l.address)) continue
    const at = ports.get(l.port)
    if (at) at.push(l)
    else ports.set(l.port, [l])
  }
  return ports
}

/** The fallback: both /proc tables read whole, each question a fresh read (a decision asks through a Moment, which reads once). */
export class ProcTables implements KernelTables {
  readonly name = 'proc' as const
  examined = 0
  queries = 0

  constructor(readonly reason: string) {}

  private read(busy?: Set<number>): RawListener[] {
    const listeners: RawListener[] = []
    for (const [file, family] of [['/proc/net/tcp', 'ipv4'], ['/proc/net/tcp6', 'ipv6']] as const) {
      let text: string
      try {
        text = fs.readFileSync(file, 'latin1')
      } catch {
        continue // no IPv6 in this kernel or namespace
      }
      this.queries++
      // Every line is examined: the cost sock_diag avoids.
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.examined++
      listeners.push(...parseProcNet(text, family, busy))
    }
    return listeners
  }

  listenersOn(port: number): RawListener[] {
    return this.listeners().get(port) ?? []
  }

  listeners(): Map<number, RawListener[]> {
    return byPort(this.read())
  }

  otherwiseHeld(port: number): boolean {
    return this.snapshot().busy.has(port)
  }

  connectionOwner(client: Endpoint, server: Endpoint): number | null {
    const [c, s] = unmapped(client, server)
    this.queries++
    try {
      return connectionUid(fs.readFileSync(c.address.includes(':') ? '/proc/net/tcp6' : '/proc/net/tcp', 'latin1'), c, s)
    } catch {
      return null // no such table here: nobody can be told apart, so nobody is let in
    }
  }

  /** One read for a whole decision: the listeners, and the ports other sockets hold. */
  snapshot(): {listeners: Map<number, RawListener[]>; busy: Set<number>} {
    const busy = new Set<number>()
    return {listeners: byPort(this.read(busy)), busy}
  }
}

/**
 * The kernel as one decision sees it. The first port asked about is asked exactly; a decision that goes on to
 * other ports (a move looking for a free one) fetches every listener once, which costs what the listeners
 * cost. Nothing outlives the decision: the next one asks again.
 *
 * A port about to be handed out is also asked whether anything else holds it (TIME_WAIT, an outgoing
 * connection): that stops a server that binds without SO_REUSEADDR, and three such ports in a row would
 * exhaust the interceptor's asks.
 */
export class Moment {
  private first: {port: number; listeners: RawListener[]} | undefined
  private all: Map<number, RawListener[]> | undefined
  private procBusy: Set<number> | undefined

  constructor(private readonly kernel: KernelTables) {
    // The fallback's every question reads the whole table: one read for the whole decision.
    if (kernel instanceof ProcTables) ({listeners: this.all, busy: this.procBusy} = kernel.snapshot())
  }

  listenersOn(port: number): RawListener[] {
    if (this.all) return this.all.get(port) ?? []
    if (this.first === undefined) {
      this.first = {port, listeners: this.kernel.listenersOn(port)}
      return this.first.listeners
    }
    if (this.first.port === port) return this.first.listeners
    this.all = this.kernel.listeners()
    return this.all.get(port) ?? []
  }

  isBound(port: number): boolean {
    return this.listenersOn(port).length > 0
  }

  otherwiseHeld(port: number): boolean {
    return this.procBusy ? this.procBusy.has(port) : this.kernel.otherwiseHeld(port)
  }
}

/** The default: inet_diag dumps, the kernel filtering by state and port (kernel/sockdiag.zig). */
export class DiagTables implements KernelTables {
  readonly name = 'sock_diag' as const
  readonly reason = null

  constructor(
    private readonly addon: Pick<KernelAddon, 'sockets' | 'bindable' | 'stats' | 'connection'>,
    private readonly decode: (records: Buffer) => KernelSocket[],
  ) {}

  listenersOn(port: number): RawListener[] {
    return this.decode(this.addon.sockets(port, true)).filter((s) => isLocalAddress(s.address))
  }

  listeners(): Map<number, RawListener[]> {
    return byPort(this.decode(this.addon.sockets(0, true)))
  }

  otherwiseHeld(port: number): boolean {
    // Its bind hash, O(1): not the connection hash a sock_diag dump of every state would walk.
    return this.addon.bindable(port) === false
  }

  connectionOwner(client: Endpoint, server: Endpoint): number | null {
    const [c, s] = unmapped(client, server)
    const record = this.addon.connection(c.address, c.port, s.address, s.port)
    const socket = record === null ? undefined : this.decode(record)[0]
    return socket && OWNED_STATES.has(socket.state) ? socket.uid : null
  }

  get examined(): number {
    return this.addon.stats().examined
  }

  get queries(): number {
    return this.addon.stats().queries
  }
}
