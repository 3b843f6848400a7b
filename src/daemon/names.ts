import {baseName, isHostName, suffixOf, uniqueName, type NameSource} from '../core/names.js'
import type {LeaseRow, Store} from '../store/store.js'
import type {EventHub} from './hub.js'

/**
 * The live leases by name, for the decision that names a new lease and for the proxy's lookup at each request.
 * A map from name to ports, checked against the lease table on every read (the row on that port must still carry
 * the name): the table stays the truth, a stale entry costs one lookup by key, and no index on name is written
 * by every decision (an index page per commit is what schema 2 took away). Entries are added when a lease is
 * written, inside its transaction, and dropped when a lease's release is announced (after commit). A name has
 * more than one port only for allocations named alike in two projects (`allocate -n` is per project): the first
 * leads there, the next takes over when it goes.
 */
export class LiveNames {
  private readonly ports = new Map<string, number[]>()
  /** Per base name, the lowest suffix that may be free: lowered when a suffixed name ends, raised when one is given. */
  private readonly nextSuffix = new Map<string, number>()

  constructor(private readonly store: Store, hub: EventHub) {
    for (const r of store.namedLeases()) this.add(r)
    hub.observe((e) => {
      if (e.type === 'lease.released' && e.data.name !== null) {
        this.drop(e.data.name, e.data.port)
        this.freed(e.data.name)
      }
    })
  }

  /** The live lease that has `name`, read from the table now. */
  lease(name: string): LeaseRow | undefined {
    for (const port of this.ports.get(name) ?? []) {
      const row = this.store.leaseByPort(port)
      if (row?.name === name) return row
    }
    return undefined
  }

  /** Whether `row` (a live lease) is the one its name leads to. */
  holds(row: LeaseRow): boolean {
    return row.name !== null && this.ports.get(row.name)?.[0] === row.port
  }

  /**
   * A lease named `name` ended (announced, or deleted in the caller's turn): its suffix may be given again. A base
   * shortened to make room for its suffix is not recognized: the next name is then a higher suffix, still unique.
   */
  freed(name: string): void {
    const m = /^(.*)-(\d+)$/.exec(name)
    if (!m) return
    const hint = this.nextSuffix.get(m[1])
    if (hint !== undefined && Number(m[2]) < hint) this.nextSuffix.set(m[1], Number(m[2]))
  }

  private drop(name: string, port: number): void {
    // A restart given the same port and the same name in the turn that ended its predecessor's lease keeps it.
    if (this.store.leaseByPort(port)?.name === name) return
    const list = this.ports.get(name)?.filter((p) => p !== port) ?? []
    if (list.length) this.ports.set(name, list)
    else this.ports.delete(name)
  }

  taken(name: string): boolean {
    return this.lease(name) !== undefined
  }

  /** A lease just written (in the caller's transaction), after the name's earlier holders. */
  add(row: LeaseRow): void {
    if (row.name === null) return
    // A port left by a lease whose release was not announced (a rolled-back turn) is replaced, not kept twice.
    const list = (this.ports.get(row.name) ?? []).filter((p) => p !== row.port && this.store.leaseByPort(p)?.name === row.name)
    this.ports.set(row.name, [...list, row.port])
  }

  /** Every live name that has a URL, sorted (the proxy's 404 page lists them). */
  names(): string[] {
    return [...this.ports.keys()].filter((n) => isHostName(n) && this.taken(n)).sort()
  }

  /**
   * A new lease's name, inside its decision's transaction: the given one or the derived one (core/names.ts),
   * with a suffix while another live lease has it. A derived name is remembered per project, type and asked
   * port (0: none), so the server's next start gets the same one while it is free.
   */
  choose(source: NameSource & {requestedPort: number | null}, now: number): string {
    const base = baseName(source)
    const {project, service} = source
    const asked = source.requestedPort ?? 0
    const derived = !source.explicit
    const remembered = derived && project !== null ? this.store.rememberedName(project, service, asked) : undefined
    const from = this.nextSuffix.get(base) ?? 2
    const name = uniqueName(base, (n) => this.taken(n), remembered, from)
    const n = suffixOf(name, base)
    // A remembered name skipped the scan: the suffixes below it were not looked at.
    if (n >= from && name !== remembered) this.nextSuffix.set(base, n + 1)
    // Only a name other than the one a fresh start would get is written (no write for most new leases), and a
    // memory is kept while a live lease holds it: a twin named `-2` must not take its first copy's name away.
    if (derived && project !== null && name !== (remembered ?? base) && (remembered === undefined || !this.taken(remembered))) {
      this.store.rememberName(project, service, asked, name, now)
    }
    return name
  }
}
