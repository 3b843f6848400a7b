import type {
  AllocationRequest, AllocationResponse, BindRequest, BindResponse, CleanupResponse, ExitWatchRequest, Instance, KernelStatus, Lease, PortInfo,
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
import {describeListeners, ownersOf, type RawListener} from './socket-table.js'
import {Moment, type KernelTables} from '../kernel/tables.js'
import type {ExitWatcher} from '../kernel/exits.js'
import {inOtherNetwork, isSameProcessAlive, processStartTime, takeDied} from './proc.js'
import type {Metrics} from './metrics.js'
import {appendAudit} from './audit.js'
import type {LeaseRules} from './instances.js'

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

  constructor(
    readonly store: Store,
    readonly types: ServiceType[],
    private readonly hub: EventHub,
    readonly kernel: KernelTables,
    private readonly auditFile: string,
    private readonly options: CoordinatorOptions,
    private readonly metrics?: Metrics,
    readonly exits?: ExitWatcher,
  ) {
    this.limits = {types, reserved: new Set([options.daemonPort]), minPort: options.minPort}
    this.typeByName = new Map(types.map((t) => [t.name, t]))
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

  private dropLease(row: LeaseRow): void {
    this.store.deleteLease(row)
  }

  /**
   * A holder's exit is an event (pidfd): watched from its first lease on. The watch is opened before the start
   * time is read again, so a pid that passed to another process in between is caught here, not watched.
   */
  private watchHolder(pid: number | null, pidStart: number | null): void {
    if (pid === null || this.exits === undefined) return
    let watched: boolean
    try {
      watched = this.exits.watch(pid)
    } catch {
      return // out of fds, say: the reaper's rounds still find this holder's exit, later
    }
    if (!watched || !isSameProcessAlive(pid, pidStart)) this.holderExited(pid)
  }

  /** A watched process has exited: its leases and instances go now, not at the next reaper tick. */
  holderExited(pid: number): CleanupResponse {
    const out = this.releaseExited(pid)
    for (const inst of this.store.instances()) {
      if (inst.pid !== pid || isSameProcessAlive(inst.pid, inst.pid_start)) continue
      const {instance, leases} = this.expireInstance(inst, 'holder exited')
      out.expiredInstances.push(instance)
      out.released.push(...leases.map(toLease))
    }
    return out
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

  /** Asked, decided and written in one synchronous turn: the kernel's answer is as of this moment. */
  bind(req: BindRequest): BindResponse {
    if (inOtherNetwork(req.pid)) {
      return {action: 'allow', port: req.port, requestedPort: req.port, service: DEFAULT_SERVICE, leaseId: null, repeat: false, newLease: false}
    }
    const pidStart = this.holderStart(req.pid)
    const taken = new Set(req.taken ?? [])
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
      }, this.view(), this.limits)
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
    if (created.length) this.watchHolder(req.pid, pidStart)
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

  allocate(req: AllocationRequest): AllocationResponse {
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
      const port = firstFree(allocationCandidates(type, req.port), this.view(), this.limits)
      if (port === undefined) throw new StyxyError('RANGE_EXHAUSTED', `no free port left for ${type.name} (${type.range[0]}-${type.range[1]})`)
      const row: LeaseRow = {
        id: newLeaseId(port), port, service: type.name, kind: 'allocation', requested_port: req.port ?? null, pid: req.pid ?? null,
        pid_start: pidStart, instance_id: req.instanceId ?? null, name: req.name ?? null, project: req.project ?? null,
        command: null, created_at: this.stamp(), last_listening: null,
      }
      this.store.insertLease(row)
      return {...toLease(row), joined: false}
    })
    if (!result.joined) {
      this.hub.publish({type: 'lease.created', data: result})
      this.watchHolder(result.pid, pidStart)
    }
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

  portInfo(port: number): PortInfo {
    return this.describePort(port, this.kernel.listenersOn(port), this.store.leaseByPort(port))
  }

  private describePort(port: number, raw: RawListener[], row: LeaseRow | undefined, owners = ownersOf(raw.map((l) => l.inode))): PortInfo {
    return {
      port, bound: raw.length > 0, listeners: describeListeners(raw, owners), leased: !!row, lease: row ? toLease(row) : null,
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

  suggest(requested: string, count: number): SuggestResponse {
    // An unknown type falls back to dev, as the first design did, so old scripts keep working.
    const type = this.typeByName.get(requested) ?? this.serviceType(DEFAULT_SERVICE)
    return {service: type.name, requested, ports: suggestPorts(type, count, this.view(), this.limits)}
  }

  /** An instance whose holder exited or whose heartbeats stopped goes, with its leases. */
  private expireInstance(row: InstanceRow, reason: string): {instance: Instance; leases: LeaseRow[]} {
    const leases = this.store.transaction(() => {
      const leases = this.store.leasesOfInstance(row.id)
      for (const l of leases) this.dropLease(l)
      this.store.deleteInstance(row.id)
      return leases
    })
    for (const l of leases) this.hub.publish({type: 'lease.released', data: {...toLease(l), reason: 'instance-expired'}})
    const instance = toInstance(row)
    this.hub.publish({type: 'instance.expired', data: {...instance, reason}})
    return {instance, leases}
  }

  /** For instances.ts (the instance operations): the holder check binds use, and the one way a lease goes. */
  readonly leaseRules: LeaseRules = {
    holderStart: (pid) => this.holderStart(pid), dropLease: (row) => this.dropLease(row), watchHolder: (pid, start) => this.watchHolder(pid, start),
  }

  reassignments(sinceMs?: number): Reassignment[] {
    return this.store.reassignments(sinceMs)
  }

  /**
   * Release what is stale now: leases whose holder died (pid + start time no longer match; a safety net
   * behind the exit events), leases that went without a listener for the grace period, and instances whose
   * heartbeats stopped. `force` also releases leases that are not listening right now, except those of live
   * holders that never listened yet. Nothing leased, nothing asked of the kernel.
   */
  reap(force = false): CleanupResponse {
    const seenAt = Date.now()
    const listening = this.store.leaseCount() > 0 ? this.kernel.listeners() : new Map<number, unknown>()
    return this.reapWith(listening, seenAt, force)
  }

  /** Watch every holder the store knows (at start-up: the leases outlived the daemon, their watches did not). */
  watchAll(): void {
    for (const h of this.store.holders()) this.watchHolder(h.pid, h.pid_start)
    for (const inst of this.store.instances()) this.watchHolder(inst.pid, inst.pid_start)
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
    const expired: Instance[] = []
    const ofInstances: LeaseRow[] = []
    for (const inst of this.store.instances()) {
      const dead = inst.pid !== null && !isSameProcessAlive(inst.pid, inst.pid_start)
      if (!dead && now - inst.last_heartbeat <= this.options.instanceTtlMs) continue
      const {instance, leases} = this.expireInstance(inst, dead ? 'holder exited' : 'heartbeat stopped')
      expired.push(instance)
      ofInstances.push(...leases)
    }
    this.store.transaction(() => {
      // One /proc read per holding process, however many leases it holds.
      for (const h of this.store.holders()) {
        if (isSameProcessAlive(h.pid, h.pid_start)) continue
        for (const l of this.store.leasesOfHolder(h.pid, h.pid_start)) {
          this.dropLease(l)
          released.push({row: l, reason: 'holder-exited'})
        }
      }
      // Written at most a few times per grace period: an idle daemon with many listening leases must not write
      // the database on every tick.
      for (const port of listening.keys()) this.store.touchListening(port, seenAt, this.options.listenGraceMs / 4)
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
    return {released: [...died, ...ofInstances, ...released.map((r) => r.row)].map(toLease), expiredInstances: expired}
  }
}
