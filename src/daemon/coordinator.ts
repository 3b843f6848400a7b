import type {
  AllocationRequest, AllocationResponse, BindRequest, BindResponse, KernelStatus, Lease, PortInfo,
  Reassignment, ServiceType, SuggestResponse,
} from '../protocol/types.js'
import {StyxyError} from '../protocol/errors.js'
import {allocationCandidates, decideBind, firstFree, suggestPorts, type Limits, type PortView} from '../core/decide.js'
import {DEFAULT_SERVICE, serviceForPort} from '../core/service-types.js'
import {inferService} from '../core/inference.js'
import {isBrowserBlocked} from '../core/blocked-ports.js'
import {newLeaseId, Store, toLease, toLeaseView, type LeaseRow} from '../store/store.js'
import {EventHub} from './hub.js'
import {describeListeners, ownersOf} from './socket-table.js'
import type {RawListener} from '../shared/proc-net.js'
import {Moment, type KernelTables} from '../kernel/tables.js'
import type {ExitWatcher} from '../kernel/exits.js'
import {inOtherNetwork, isSameProcessAlive, ownerOf, processStartTime} from './proc.js'
import type {Metrics} from './metrics.js'
import {appendAudit} from './audit.js'
import type {LeaseRules} from './instances.js'
import {Releases, type ReleaseOptions} from './releases.js'
import {bindProject, namedProject} from './projects.js'
import {findStrays} from './strays.js'
import {LiveNames} from './names.js'

export interface CoordinatorOptions extends ReleaseOptions {
  daemonPort: number
  minPort: number
}

/** The daemon's decisions: each one read, decided and written in one synchronous transaction, announced after commit. */
export class Coordinator {
  private limits: Limits
  private typeByName: Map<string, ServiceType>
  private serviceTypes: ServiceType[]
  /** Every way a lease ends (releases.ts). */
  readonly releases: Releases
  /** The live leases by name (names.ts): new leases are named against it, the proxy looks names up in it. */
  readonly names: LiveNames

  constructor(
    readonly store: Store,
    types: ServiceType[],
    private readonly hub: EventHub,
    readonly kernel: KernelTables,
    private readonly auditFile: string,
    options: CoordinatorOptions,
    private readonly metrics?: Metrics,
    readonly exits?: ExitWatcher,
  ) {
    this.limits = {types, reserved: new Set([options.daemonPort]), minPort: options.minPort}
    this.serviceTypes = types
    this.typeByName = new Map(types.map((t) => [t.name, t]))
    this.releases = new Releases(store, hub, kernel, options, exits)
    this.names = new LiveNames(store, hub)
  }

  get types(): readonly ServiceType[] {
    return this.serviceTypes
  }

  /** A reloaded config: decisions from now on use these types; leases already made stay as they are. */
  setServiceTypes(types: ServiceType[]): void {
    this.serviceTypes = types
    this.typeByName = new Map(types.map((t) => [t.name, t]))
    this.limits = {...this.limits, types}
  }

  kernelStatus(): KernelStatus {
    const {kernel, exits} = this
    return {
      sockets: kernel.name, exits: exits?.name ?? 'poll', reason: kernel.reason ?? exits?.reason ?? null,
      queries: kernel.queries, examined: kernel.examined, watching: exits?.watching ?? 0,
    }
  }

  /** The store and the kernel as one decision sees them: the kernel asked now, nothing kept for the next. */
  private view(): PortView {
    const moment = new Moment(this.kernel)
    return {
      leaseOn: (port) => {
        const row = this.store.leaseByPort(port)
        return row && toLeaseView(row)
      },
      isBound: (port) => moment.isBound(port),
      otherwiseHeld: (port) => moment.otherwiseHeld(port),
    }
  }

  // A holder's answers for one port are told apart by creation time (the latest is the one repeated), so it
  // strictly increases, even within one millisecond (a retry, another thread), a microsecond at a time.
  private lastStamp = 0
  private stamp(): number {
    const now = Date.now()
    this.lastStamp = now > this.lastStamp ? now : this.lastStamp + 0.001
    return this.lastStamp
  }

  /** The daemon's own TCP port is known only once it listens (port 0 in tests). */
  reservePort(port: number): void {
    ;(this.limits.reserved as Set<number>).add(port)
  }

  serviceType(name: string): ServiceType {
    const t = this.typeByName.get(name)
    if (!t) {
      throw new StyxyError('UNKNOWN_SERVICE', `unknown service type "${name}"; valid types: ${[...this.typeByName.keys()].join(', ')}`)
    }
    return t
  }

  /** The asker's start time; first, the leases of holders just found dead go (their pid may be the asker's). */
  private holderStart(pid: number | undefined): number | null {
    if (pid === undefined) return null
    const start = processStartTime(pid)
    this.releases.releaseDied()
    if (start === null) throw new StyxyError('HOLDER_NOT_RUNNING', `no running process has pid ${pid}`)
    // Another user's process (pid 1, a stranger's server) would hold a lease this user can never see end.
    const owner = ownerOf(pid)
    if (owner !== null && owner !== process.geteuid?.()) throw new StyxyError('HOLDER_NOT_OURS', `pid ${pid} belongs to uid ${owner}, not to this daemon's user`)
    return start
  }

  /** Asked, decided and written in one synchronous turn: the kernel's answer is as of this moment. */
  bind(req: BindRequest): BindResponse {
    // Below the floor is not Styxy's to manage: the interceptor never asks there, and no lease may be made there.
    if (req.port < this.limits.minPort) throw new StyxyError('PORT_OUT_OF_RANGE', `port ${req.port} is below ${this.limits.minPort}: ports under the floor are not managed`)
    if (inOtherNetwork(req.pid)) {
      return {action: 'allow', port: req.port, requestedPort: req.port, service: DEFAULT_SERVICE, leaseId: null, repeat: false, newLease: false}
    }
    const pidStart = this.holderStart(req.pid)
    const taken = new Set(req.taken ?? [])
    const inferred = serviceForPort(this.types, req.port) ? DEFAULT_SERVICE : inferService(req.command ?? '', (s) => this.typeByName.has(s)).service
    const now = Date.now()
    const created: Lease[] = []
    let moved: Reassignment | undefined

    const project = bindProject(req.cwd, req.project)
    const released: LeaseRow[] = []
    // A restarted server (nodemon, --watch) asks within the reaper's interval: its predecessor's lease is gone
    // with its process, so release it now rather than move the newcomer (from the port it asked for, or from
    // the port its project was moved to last time).
    const dropIfHolderDead = (port: number) => {
      const row = this.store.leaseByPort(port)
      // The caller's own lease needs no second read of /proc: its start time was read just above.
      const holderAlive = row?.pid === req.pid ? row.pid_start === null || row.pid_start === pidStart
        : row?.pid == null || isSameProcessAlive(row.pid, row.pid_start)
      if (row && !holderAlive) {
        this.store.deleteLease(row)
        released.push(row)
        if (row.name !== null) this.names.freed(row.name)
      }
    }
    const {decision, leaseId} = this.store.transaction(() => {
      dropIfHolderDead(req.port)
      const priorRow = this.store.leaseByHolderRequest(req.pid, pidStart, req.port)
      const decision = decideBind({
        holder: {pid: req.pid, pidStart, instanceId: req.instanceId ?? null},
        requestedPort: req.port,
        taken,
        reassign: req.reassign !== false,
        inferredService: inferred,
        prior: priorRow && toLeaseView(priorRow),
        remembered: () => {
          const port = project === null ? undefined : this.store.remembered(project, req.port)
          if (port !== undefined) dropIfHolderDead(port)
          return port
        },
      }, this.view(), this.limits)
      if (decision.action === 'deny') return {decision, leaseId: null}
      let leaseId: string
      if ('reuse' in decision.lease) {
        leaseId = decision.lease.reuse.id
      } else {
        leaseId = newLeaseId(decision.port)
        const row: LeaseRow = {
          id: leaseId, port: decision.port, service: decision.service, kind: 'bind', requested_port: req.port, project,
          pid: req.pid, pid_start: pidStart, instance_id: req.instanceId ?? null,
          // A given name (STYXY_NAME) another live lease has gets a suffix: a bind is never refused over a name.
          name: this.names.choose({explicit: req.name, project, cwd: req.cwd, service: decision.service, devService: DEFAULT_SERVICE, requestedPort: req.port}, now),
          command: req.command ?? null, created_at: this.stamp(), last_listening: null,
        }
        this.store.insertLease(row)
        this.names.add(row)
        created.push(toLease(row))
      }
      if (decision.action === 'remap' && !decision.repeat) {
        moved = {at: new Date(now).toISOString(), pid: req.pid, from: req.port, to: decision.port, service: decision.service, command: req.command ?? null, project}
        this.store.addReassignment({at: now, pid: req.pid, from_port: req.port, to_port: decision.port, service: decision.service, command: req.command ?? null, project})
        this.remember(project, req.port, decision.port, now)
      }
      return {decision, leaseId}
    })

    for (const l of released) this.hub.publish({type: 'lease.released', data: {...toLease(l), reason: 'holder-exited'}})
    for (const l of created) this.hub.publish({type: 'lease.created', data: l})
    if (created.length) this.releases.watchHolder(req.pid, pidStart)
    const base = {pid: req.pid, requestedPort: req.port, port: decision.port, service: decision.service, command: req.command, leaseId: leaseId ?? undefined, project}
    if (decision.action === 'deny') {
      this.hub.publish({type: 'bind.denied', data: {...base, reason: decision.reason}})
    } else if (moved) {
      this.appendAudit(now, moved)
      this.hub.publish({type: 'bind.remapped', data: {...base, ...moved}})
    } else if (!decision.repeat) {
      this.hub.publish({type: 'bind.allowed', data: base})
    }
    this.metrics?.countBind(decision.action)
    return {
      action: decision.action, port: decision.port, requestedPort: req.port, service: decision.service, leaseId,
      repeat: decision.repeat, newLease: created.length > 0, ...(decision.action === 'deny' ? {reason: decision.reason} : {}),
    }
  }

  /**
   * The port a project's server was moved to, for its next ask of the same port. Kept while a live server of
   * the project holds it: a second copy of that server, moved further, must not take the first one's port away
   * from its next restart.
   */
  private remember(project: string | null, asked: number, port: number, now: number): void {
    if (project === null) return
    const kept = this.store.remembered(project, asked)
    if (kept !== undefined && kept !== port && this.store.leaseByPort(kept)?.project === project) return
    this.store.remember(project, asked, port, now)
  }

  private appendAudit(now: number, r: Reassignment): void {
    appendAudit(this.auditFile, now, r)
  }

  /**
   * `id` names the new lease (the legacy routes use a uuid v4, their lock id); `dryRun` decides and writes
   * nothing (the answer is the lease that would have been made). A name is one lease per project: asked again,
   * the lease that has it is the answer (`joined`), unless `sameNameAgain` (the legacy routes' rule) says otherwise.
   */
  allocate(req: AllocationRequest, opts: {id?: string; dryRun?: boolean; sameNameAgain?: boolean} = {}): AllocationResponse {
    // No type given: the one whose range holds the asked port (`styxy run --port 8000` is an api server).
    const type = req.service !== undefined ? this.serviceType(req.service)
      : (req.port !== undefined ? serviceForPort(this.types, req.port) : undefined) ?? this.serviceType(DEFAULT_SERVICE)
    if (req.port !== undefined && (req.port < this.limits.minPort || isBrowserBlocked(req.port) || this.limits.reserved.has(req.port))) {
      throw new StyxyError('PORT_OUT_OF_RANGE', `port ${req.port} cannot be handed out (below ${this.limits.minPort}, browser-blocked or the daemon's own)`)
    }
    const pidStart = this.holderStart(req.pid)
    const project = namedProject(req.project, req.pid)
    const result = this.store.transaction((): AllocationResponse => {
      const named = req.name !== undefined && !opts.sameNameAgain ? this.store.leaseByName(req.name, req.project ?? null) : undefined
      if (named) {
        if (named.service !== type.name) {
          throw new StyxyError('NAME_TAKEN', `the name "${req.name}" is already the ${named.service} lease on port ${named.port} in this project (lease ${named.id})`)
        }
        return {...toLease(named), joined: true}
      }
      if (type.singleton) {
        const holder = this.store.firstLeaseOfService(type.name)
        if (holder) return {...toLease(holder), joined: true}
      }
      const remembered = req.port !== undefined && project !== null ? this.store.remembered(project, req.port) : undefined
      const port = firstFree(allocationCandidates(type, req.port, remembered, this.types), this.view(), this.limits)
      if (port === undefined) throw new StyxyError('RANGE_EXHAUSTED', `no free port left for ${type.name} (${type.range[0]}-${type.range[1]})`)
      const row: LeaseRow = {
        id: opts.id ?? newLeaseId(port), port, service: type.name, kind: 'allocation', requested_port: req.port ?? null, pid: req.pid ?? null,
        pid_start: pidStart, instance_id: req.instanceId ?? null, project, command: null, created_at: this.stamp(), last_listening: null,
        name: req.name ?? (opts.dryRun ? null : this.names.choose({project, service: type.name, devService: DEFAULT_SERVICE, requestedPort: req.port ?? null}, Date.now())),
      }
      if (!opts.dryRun) {
        this.store.insertLease(row)
        this.names.add(row)
        if (req.port !== undefined && port !== req.port) this.remember(project, req.port, port, Date.now())
      }
      return {...toLease(row), joined: false}
    })
    if (!result.joined && !opts.dryRun) {
      this.hub.publish({type: 'lease.created', data: result})
      this.releases.watchHolder(result.pid, pidStart)
    }
    return result
  }

  /** The store's rows, for an answer that turns them into leases a few at a time (json-chunks.ts). */
  leaseRows(service?: string): LeaseRow[] {
    if (service) this.serviceType(service)
    return this.store.leases(service)
  }

  portInfo(port: number): PortInfo {
    return this.describePort(port, this.kernel.listenersOn(port), this.store.leaseByPort(port))
  }

  private describePort(port: number, raw: RawListener[], row: LeaseRow | undefined, owners = ownersOf(raw.map((l) => l.inode))): PortInfo {
    return {
      port, managed: port >= this.limits.minPort, floor: this.limits.minPort, bound: raw.length > 0, listeners: describeListeners(raw, owners), leased: !!row, lease: row ? toLease(row) : null,
      service: serviceForPort(this.types, port)?.name ?? null, blocked: isBrowserBlocked(port),
    }
  }

  /** Every port between start and end that is bound or leased (one question to the kernel: its listeners). */
  scan(start: number, end: number): PortInfo[] {
    const ports = this.kernel.listeners()
    // One walk of /proc/*/fd for every listener in the range: it is the expensive part.
    const inRange = [...ports].filter(([p]) => p >= start && p <= end).flatMap(([, ls]) => ls.map((l) => l.inode))
    const owners = ownersOf(inRange)
    const out: PortInfo[] = []
    for (let port = start; port <= end; port++) {
      const raw = ports.get(port)
      const row = this.store.leaseByPort(port)
      if (raw || row) out.push(this.describePort(port, raw ?? [], row, owners))
    }
    return out
  }

  /** An unknown type is refused, unless `fallback` (the legacy route: the first design fell back to dev, and old scripts rely on it). */
  suggest(requested: string, count: number, fallback = false): SuggestResponse {
    const type = fallback ? this.typeByName.get(requested) ?? this.serviceType(DEFAULT_SERVICE) : this.serviceType(requested)
    return {service: type.name, requested, ports: suggestPorts(type, count, this.view(), this.limits)}
  }

  /** For instances.ts (the instance operations): the holder check binds use, and the one way a lease goes. */
  readonly leaseRules: LeaseRules = {
    holderStart: (pid) => this.holderStart(pid), dropLease: (row) => this.store.deleteLease(row), watchHolder: (pid, start) => this.releases.watchHolder(pid, start),
  }

  reassignments(sinceMs?: number): Reassignment[] { return this.store.reassignments(sinceMs) }

  /** Servers our programs moved by themselves while this daemon was unreachable (strays.ts), leased now. */
  adoptStrays(stateDir: string): Lease[] {
    const strays = findStrays(this.kernel.listeners(), (port) => !this.store.leaseByPort(port), stateDir, this.limits.minPort, this.limits.reserved)
    const adopted: Lease[] = []
    for (const s of strays) {
      const start = processStartTime(s.pid)
      if (start === null) continue
      const service = serviceForPort(this.types, s.port)?.name ?? inferService(s.command ?? '', (n) => this.typeByName.has(n)).service
      const row: LeaseRow = {
        id: newLeaseId(s.port), port: s.port, service, kind: 'bind', requested_port: null, pid: s.pid, pid_start: start,
        instance_id: null, name: null, project: s.project, command: s.command, created_at: this.stamp(), last_listening: null,
      }
      // Checked again inside the transaction: a bind that raced this start may have leased the port meanwhile.
      const made = this.store.transaction(() => {
        if (this.store.leaseByPort(s.port)) return false
        row.name = this.names.choose({project: s.project, service, devService: DEFAULT_SERVICE, requestedPort: null}, Date.now())
        this.store.insertLease(row)
        this.names.add(row)
        return true
      })
      if (!made) continue
      adopted.push(toLease(row))
      this.hub.publish({type: 'lease.created', data: toLease(row)})
      this.releases.watchHolder(s.pid, start)
    }
    return adopted
  }
}
