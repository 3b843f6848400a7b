import type {
  AllocationRequest, AllocationResponse, BindRequest, BindResponse, CleanupResponse, ExitWatchRequest, Lease, PortInfo,
  Reassignment, ServiceType, SuggestResponse,
} from '../protocol/types.js'
import type {ReleaseReason} from '../protocol/events.js'
import {StyxyError} from '../protocol/errors.js'
import {allocationCandidates, decideBind, firstFree, suggestPorts, type Limits, type PortView} from '../core/decide.js'
import {DEFAULT_SERVICE, serviceForPort} from '../core/service-types.js'
import {inferService} from '../core/inference.js'
import {isBrowserBlocked} from '../core/blocked-ports.js'
import {newLeaseId, Store, toInstance, toLease, toLeaseView, type InstanceRow, type LeaseRow} from '../store/store.js'
import {EventHub} from './hub.js'
import {describeListeners, ownersOf, SocketTable, type RawListener} from './socket-table.js'
import {isSameProcessAlive, processStartTime, takeDied} from './proc.js'
import type {Metrics} from './metrics.js'
import {appendAudit} from './audit.js'
import type {LeaseRules} from './instances.js'

/** How old a snapshot of the kernel's tables an allocation may use (binds use the table's own, longer, age). */
const ALLOCATION_SCAN_MAX_AGE_MS = 250

export interface CoordinatorOptions {
  daemonPort: number
  minPort: number
  /** How long a lease may go without a listener (once bound or seen listening) before it is released. */
  listenGraceMs: number
  /** How long an instance may go without a heartbeat. */
  instanceTtlMs: number
}

/** The daemon's decisions: each one read, decided and written in one synchronous transaction, announced after commit. */
export class Coordinator {
  private readonly limits: Limits
  private readonly typeByName: Map<string, ServiceType>
  private readonly view: PortView

  constructor(
    readonly store: Store,
    readonly types: ServiceType[],
    private readonly hub: EventHub,
    private readonly sockets: SocketTable,
    private readonly auditFile: string,
    private readonly options: CoordinatorOptions,
    private readonly metrics?: Metrics,
  ) {
    this.limits = {types, reserved: new Set([options.daemonPort]), minPort: options.minPort}
    this.typeByName = new Map(types.map((t) => [t.name, t]))
    this.view = {
      leaseOn: (port) => {
        const row = store.leaseByPort(port)
        return row && toLeaseView(row)
      },
      isBound: (port) => this.sockets.current.ports.has(port),
      isBusy: (port) => this.sockets.current.busy.has(port),
    }
  }

  /**
   * When a lease was last released. Its program may still listen there (a run killed outright, a lease
   * deleted by hand), and only a table read after the release is sure to show that listener.
   */
  private lastRelease = 0

  private dropLease(row: LeaseRow): void {
    this.store.deleteLease(row)
    this.lastRelease = Date.now()
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
    this.releaseDied()
    if (start === null) throw new StyxyError('HOLDER_NOT_RUNNING', `no running process has pid ${pid}`)
    return start
  }

  /**
   * Leases of pinned holders found dead since the last look (proc.ts): released before anyone with the same
   * pid gets a lease, since a newcomer started within the dead one's clock tick has the same start time too.
   */
  private releaseDied(): LeaseRow[] {
    const died = takeDied()
    if (died.length === 0) return []
    const released = this.store.transaction(() => died.flatMap(([pid, start]) => {
      const rows = this.store.leasesOfHolder(pid, start)
      for (const l of rows) this.dropLease(l)
      return rows
    }))
    for (const row of released) this.hub.publish({type: 'lease.released', data: {...toLease(row), reason: 'holder-exited'}})
    return released
  }

  /** The kernel table is read (off the event loop) before the synchronous decision, never inside it. */
  async bind(req: BindRequest): Promise<BindResponse> {
    await this.sockets.fresh()
    return this.bindNow(req)
  }

  private bindNow(req: BindRequest): BindResponse {
    const pidStart = this.holderStart(req.pid)
    const taken = new Set(req.taken ?? [])
    // A retry (`taken`) does not force a fresh read of the kernel's tables: that costs milliseconds, the ports
    // the caller found busy are excluded anyway, and another unseen listener is caught by the next retry.
    const inferred = serviceForPort(this.types, req.port) ? DEFAULT_SERVICE : inferService(req.command ?? '', (s) => this.typeByName.has(s)).service
    const now = Date.now()
    const created: Lease[] = []
    let moved: Reassignment | undefined

    const released: LeaseRow[] = []
    const {decision, leaseId} = this.store.transaction(() => {
      // A restarted server (nodemon, --watch) asks within the reaper's interval: its predecessor's lease is
      // gone with its process, so release it now rather than move the newcomer.
      const onTarget = this.store.leaseByPort(req.port)
      // The caller's own lease needs no second read of /proc: its start time was read just above.
      const holderAlive = onTarget?.pid === req.pid ? onTarget.pid_start === null || onTarget.pid_start === pidStart
        : onTarget?.pid == null || isSameProcessAlive(onTarget.pid, onTarget.pid_start)
      if (onTarget && !holderAlive) {
        this.dropLease(onTarget)
        released.push(onTarget)
      }
      const priorRow = this.store.leaseByHolderRequest(req.pid, pidStart, req.port)
      const decision = decideBind({
        holder: {pid: req.pid, pidStart, instanceId: req.instanceId ?? null},
        requestedPort: req.port,
        taken,
        reassign: req.reassign !== false,
        inferredService: inferred,
        prior: priorRow && toLeaseView(priorRow),
        remembered: () => (req.cwd ? this.store.remembered(req.cwd, req.port) : undefined),
      }, this.view, this.limits)
      if (decision.action === 'deny') return {decision, leaseId: null}
      let leaseId: string
      if ('reuse' in decision.lease) {
        leaseId = decision.lease.reuse.id
      } else {
        leaseId = newLeaseId(decision.port)
        const row: LeaseRow = {
          id: leaseId, port: decision.port, service: decision.service, kind: 'bind', requested_port: req.port,
          pid: req.pid, pid_start: pidStart, instance_id: req.instanceId ?? null, name: null, project: req.cwd ?? null,
          command: req.command ?? null, created_at: this.stamp(), last_listening: null,
        }
        this.store.insertLease(row)
        created.push(toLease(row))
      }
      if (decision.action === 'remap' && !decision.repeat) {
        moved = {at: new Date(now).toISOString(), pid: req.pid, from: req.port, to: decision.port, service: decision.service, command: req.command ?? null, project: req.cwd ?? null}
        this.store.addReassignment({at: now, pid: req.pid, from_port: req.port, to_port: decision.port, service: decision.service, command: req.command ?? null, project: req.cwd ?? null})
        if (req.cwd) this.store.remember(req.cwd, req.port, decision.port, now)
      }
      return {decision, leaseId}
    })

    for (const l of released) this.hub.publish({type: 'lease.released', data: {...toLease(l), reason: 'holder-exited'}})
    for (const l of created) this.hub.publish({type: 'lease.created', data: l})
    const base = {pid: req.pid, requestedPort: req.port, port: decision.port, service: decision.service, command: req.command, leaseId: leaseId ?? undefined}
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

  private appendAudit(now: number, r: Reassignment): void {
    appendAudit(this.auditFile, now, r)
  }

  async allocate(req: AllocationRequest): Promise<AllocationResponse> {
    // An allocation reserves a port before anything binds it, so no bind retry would catch a listener the
    // snapshot missed: it gets a fresher one than binds do, and one read after the last release (a port just
    // released may still have its listener: the lease table no longer guards it, only the kernel's does).
    // Allocations are rare; binds come in bursts.
    await this.sockets.fresh(Math.min(this.sockets.maxAgeMs, ALLOCATION_SCAN_MAX_AGE_MS), this.lastRelease)
    const type = this.serviceType(req.service)
    if (req.port !== undefined && (req.port < this.limits.minPort || isBrowserBlocked(req.port) || this.limits.reserved.has(req.port))) {
      throw new StyxyError('PORT_OUT_OF_RANGE', `port ${req.port} cannot be handed out (below ${this.limits.minPort}, browser-blocked or the daemon's own)`)
    }
    const pidStart = this.holderStart(req.pid)
    const result = this.store.transaction((): AllocationResponse => {
      if (type.singleton) {
        const holder = this.store.firstLeaseOfService(type.name)
        if (holder) return {...toLease(holder), joined: true}
      }
      const port = firstFree(allocationCandidates(type, req.port), this.view, this.limits)
      if (port === undefined) throw new StyxyError('RANGE_EXHAUSTED', `no free port left for ${type.name} (${type.range[0]}-${type.range[1]})`)
      const row: LeaseRow = {
        id: newLeaseId(port), port, service: type.name, kind: 'allocation', requested_port: req.port ?? null, pid: req.pid ?? null,
        pid_start: pidStart, instance_id: req.instanceId ?? null, name: req.name ?? null, project: req.project ?? null,
        command: null, created_at: this.stamp(), last_listening: null,
      }
      this.store.insertLease(row)
      return {...toLease(row), joined: false}
    })
    if (!result.joined) this.hub.publish({type: 'lease.created', data: result})
    return result
  }

  /** Release by lease id, or by port when given digits. */
  release(idOrPort: string, reason: ReleaseReason = 'released'): Lease {
    const row = /^\d+$/.test(idOrPort) ? this.store.leaseByPort(Number(idOrPort)) : this.store.leaseById(idOrPort)
    if (!row) throw new StyxyError('NOT_FOUND', `no lease ${/^\d+$/.test(idOrPort) ? 'on port ' : ''}${idOrPort}`)
    this.store.transaction(() => this.dropLease(row))
    const lease = toLease(row)
    this.hub.publish({type: 'lease.released', data: {...lease, reason}})
    return lease
  }

  /** The store's rows, for an answer that turns them into leases a few at a time (json-chunks.ts). */
  leaseRows(service?: string): LeaseRow[] {
    if (service) this.serviceType(service)
    return this.store.leases(service)
  }

  async portInfo(port: number): Promise<PortInfo> {
    return this.describePort(port, (await this.sockets.fresh(0)).ports.get(port) ?? [], this.store.leaseByPort(port))
  }

  private describePort(port: number, raw: RawListener[], row: LeaseRow | undefined, owners = ownersOf(raw.map((l) => l.inode))): PortInfo {
    return {
      port, bound: raw.length > 0, listeners: describeListeners(raw, owners), leased: !!row, lease: row ? toLease(row) : null,
      service: serviceForPort(this.types, port)?.name ?? null, blocked: isBrowserBlocked(port),
    }
  }

  /** Every port between start and end that is bound or leased (one read of the kernel's tables). */
  async scan(start: number, end: number): Promise<PortInfo[]> {
    const ports = (await this.sockets.fresh(0)).ports
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

  async suggest(requested: string, count: number): Promise<SuggestResponse> {
    // An unknown type falls back to dev, as the first design did, so old scripts keep working.
    const type = this.typeByName.get(requested) ?? this.serviceType(DEFAULT_SERVICE)
    await this.sockets.fresh(0)
    return {service: type.name, requested, ports: suggestPorts(type, count, this.view, this.limits)}
  }

  /** For instances.ts (the instance operations): the holder check binds use, and the one way a lease goes. */
  readonly leaseRules: LeaseRules = {holderStart: (pid) => this.holderStart(pid), dropLease: (row) => this.dropLease(row)}

  reassignments(sinceMs?: number): Reassignment[] {
    return this.store.reassignments(sinceMs)
  }

  /**
   * Release what is stale now: leases whose holder died (pid + start time no longer match), leases that went
   * without a listener for the grace period, and instances whose heartbeats stopped. `force` also releases
   * leases that are not listening right now, except those of live holders that never listened yet.
   */
  /**
   * Release what is stale, judged on a read of the kernel's tables made now, as of the time that read began:
   * a listener that started while it was under way must not count as missing.
   */
  async reap(force = false): Promise<CleanupResponse> {
    // Reading the kernel's tables costs milliseconds: skip it when there is nothing to check. (Taking the
    // snapshot binds use instead, up to 1 s old, showed no gain in CPU per decision, and binds then met a
    // staler view of busy ports: more retries past ports in use.)
    const view = this.store.leaseCount() > 0 ? await this.sockets.fresh(0) : {at: Date.now(), ports: new Map<number, unknown>()}
    return this.reapWith(view.ports, view.at, force)
  }

  /** Release the leases of one process that has exited (what `styxy run` asks for when its child ends). */
  releaseExited(pid: number): CleanupResponse {
    const released = this.store.transaction(() => {
      const gone: LeaseRow[] = []
      for (const h of this.store.holders()) {
        if (h.pid !== pid || isSameProcessAlive(h.pid, h.pid_start)) continue
        for (const l of this.store.leasesOfHolder(h.pid, h.pid_start)) {
          this.dropLease(l)
          gone.push(l)
        }
      }
      return gone
    })
    for (const row of released) this.hub.publish({type: 'lease.released', data: {...toLease(row), reason: 'holder-exited'}})
    return {released: released.map(toLease), expiredInstances: []}
  }

  /**
   * A `styxy run` is over (its exit watch ended): the command's leases go if it has exited (a command that
   * outlived a killed run keeps them), and the run's own lease goes in any case.
   */
  releaseAfterRun(req: ExitWatchRequest): CleanupResponse {
    const out = this.releaseExited(req.pid)
    if (req.leaseId) {
      try {
        out.released.push(this.release(req.leaseId))
      } catch (error) {
        if (!(error instanceof StyxyError && error.code === 'NOT_FOUND')) throw error
      }
    }
    return out
  }

  private reapWith(listening: ReadonlyMap<number, unknown>, seenAt: number, force: boolean): CleanupResponse {
    const now = Date.now()
    const died = this.releaseDied()
    const released: {row: LeaseRow; reason: ReleaseReason}[] = []
    const expired: {row: InstanceRow; reason: string}[] = []
    this.store.transaction(() => {
      for (const inst of this.store.instances()) {
        const dead = inst.pid !== null && !isSameProcessAlive(inst.pid, inst.pid_start)
        if (!dead && now - inst.last_heartbeat <= this.options.instanceTtlMs) continue
        expired.push({row: inst, reason: dead ? 'holder exited' : 'heartbeat stopped'})
        for (const l of this.store.leasesOfInstance(inst.id)) {
          this.dropLease(l)
          released.push({row: l, reason: 'instance-expired'})
        }
        this.store.deleteInstance(inst.id)
      }
      // One /proc read per holding process, however many leases it holds.
      for (const h of this.store.holders()) {
        if (isSameProcessAlive(h.pid, h.pid_start)) continue
        for (const l of this.store.leasesOfHolder(h.pid, h.pid_start)) {
          this.dropLease(l)
          released.push({row: l, reason: 'holder-exited'})
        }
      }
      for (const port of listening.keys()) this.store.touchListening(port, seenAt, 1000)
      // Forced: everything not listening now, except leases of live holders that have not listened yet (between
      // their bind() and listen(), or an allocation waiting for its server); dead holders went above.
      const quiet = force ? this.store.leases().filter((l) => l.last_listening !== null || l.pid === null) : this.store.quietSince(seenAt - this.options.listenGraceMs)
      for (const l of quiet) {
        if (listening.has(l.port)) continue
        this.dropLease(l)
        released.push({row: l, reason: force ? 'cleanup' : 'not-listening'})
      }
    })
    for (const {row, reason} of released) this.hub.publish({type: 'lease.released', data: {...toLease(row), reason}})
    for (const {row, reason} of expired) this.hub.publish({type: 'instance.expired', data: {...toInstance(row), reason}})
    return {released: [...died, ...released.map((r) => r.row)].map(toLease), expiredInstances: expired.map((e) => toInstance(e.row))}
  }
}
