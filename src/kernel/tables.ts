import fs from 'node:fs'
import {isLocalAddress, parseProcNet, type RawListener} from '../daemon/socket-table.js'

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
  /** A socket other than a listener (a connection, TIME_WAIT) has this local port. */
  hasOtherSockets(port: number): boolean
  /** Sockets the kernel described to us, over the daemon's life: a decision's cost in sockets examined. */
  readonly examined: number
  readonly queries: number
}

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

  private read(): {listeners: RawListener[]; busy: Set<number>} {
    const busy = new Set<number>()
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
    return {listeners, busy}
  }

  listenersOn(port: number): RawListener[] {
    return this.listeners().get(port) ?? []
  }

  listeners(): Map<number, RawListener[]> {
    return byPort(this.read().listeners)
  }

  hasOtherSockets(port: number): boolean {
    return this.read().busy.has(port)
  }

  /** One read for a whole decision. */
  snapshot(): {listeners: Map<number, RawListener[]>; busy: Set<number>} {
    const {listeners, busy} = this.read()
    return {listeners: byPort(listeners), busy}
  }
}

/**
 * The kernel as one decision sees it. The first port asked about is asked exactly; a decision that goes on to
 * other ports (a move looking for a free one) fetches every listener once, which costs what the listeners
 * cost, and asks the one port it settles on whether anything else (TIME_WAIT) holds it. Nothing outlives the
 * decision: the next one asks again.
 */
export class Moment {
  private first: {port: number; listeners: RawListener[]} | undefined
  private all: Map<number, RawListener[]> | undefined
  private procBusy: Set<number> | undefined

  constructor(private readonly kernel: KernelTables) {
    if (kernel instanceof ProcTables) {
      const snap = kernel.snapshot()
      this.all = snap.listeners
      this.procBusy = snap.busy
    }
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

  isBusy(port: number): boolean {
    return this.procBusy ? this.procBusy.has(port) : this.kernel.hasOtherSockets(port)
  }
}

/** A decoded sock_diag record (src/kernel/decode.ts). */
export interface DiagSocket extends RawListener {
  state: number
}

const TCP_LISTEN = 10

/** The default: inet_diag dumps, the kernel filtering by state and port (kernel/sockdiag.zig). */
export class DiagTables implements KernelTables {
  readonly name = 'sock_diag' as const
  readonly reason = null

  constructor(
    private readonly addon: {sockets(port: number, listenOnly: boolean): Buffer; stats(): {queries: number; examined: number}},
    private readonly decode: (records: Buffer) => DiagSocket[],
  ) {}

  listenersOn(port: number): RawListener[] {
    return this.decode(this.addon.sockets(port, true)).filter((s) => isLocalAddress(s.address))
  }

  listeners(): Map<number, RawListener[]> {
    return byPort(this.decode(this.addon.sockets(0, true)))
  }

  hasOtherSockets(port: number): boolean {
    return this.decode(this.addon.sockets(port, false)).some((s) => s.state !== TCP_LISTEN)
  }

  get examined(): number {
    return this.addon.stats().examined
  }

  get queries(): number {
    return this.addon.stats().queries
  }
}
