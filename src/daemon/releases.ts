import type {CleanupResponse, ExitWatchRequest, Instance, Lease} from '../protocol/types.js'
import type {ReleaseReason} from '../protocol/events.js'
import {StyxyError} from '../protocol/errors.js'
import {Store, toInstance, toLease, type InstanceRow, type LeaseRow} from '../store/store.js'
import type {EventHub} from './hub.js'
import type {KernelTables} from '../kernel/tables.js'
import type {ExitWatcher} from '../kernel/exits.js'
import {isSameProcessAlive, takeDied} from './proc.js'

export interface ReleaseOptions {
  /** How long a lease may go without a listener (once bound or seen listening) before it is released. */
  listenGraceMs: number
  /** How long an instance may go without a heartbeat. */
  instanceTtlMs: number
}

/**
 * Every way a lease ends: its holder's exit (an event, pidfd), a release asked for, a run that is over, and the
 * reaper's rounds (heartbeats stopped, no listener for the grace period, and the dead the events missed).
 */
export class Releases {
  constructor(
    private readonly store: Store,
    private readonly hub: EventHub,
    private readonly kernel: KernelTables,
    private readonly options: ReleaseOptions,
    readonly exits?: ExitWatcher,
  ) {}

  /** Holders whose exit no pidfd reports (opening one failed): the reaper's rounds look at these. */
  private readonly unwatched = new Set<number>()

  /** Whether the reaper must look at this holder itself: exits are not events here, or its watch failed. */
  private polled(pid: number): boolean {
    return this.exits?.name !== 'pidfd' || this.unwatched.has(pid)
  }

  /**
   * A holder's exit is an event (pidfd): watched from its first lease on. The watch is opened before the start
   * time is read again, so a pid that passed to another process in between is caught here, not watched.
   */
  watchHolder(pid: number | null, pidStart: number | null): void {
    if (pid === null || this.exits === undefined) return
    let watched: boolean
    try {
      watched = this.exits.watch(pid)
    } catch {
      this.unwatched.add(pid) // out of fds, say: the reaper's rounds find this holder's exit, later
      return
    }
    if (!watched || !isSameProcessAlive(pid, pidStart)) this.holderExited(pid)
  }

  /** A watched process has exited: its leases and instances go now, not at the next reaper tick. */
  holderExited(pid: number): CleanupResponse {
    this.unwatched.delete(pid)
    const out = this.releaseExited(pid)
    for (const inst of this.store.instances()) {
      if (inst.pid !== pid || isSameProcessAlive(inst.pid, inst.pid_start)) continue
      const {instance, leases} = this.expireInstance(inst, 'holder exited')
      out.expiredInstances.push(instance)
      out.released.push(...leases.map(toLease))
    }
    // The pid may already be a newcomer's, one that asked while the old watch stood (which made its own watch a
    // no-op): whatever still holds under this pid is watched afresh.
    if (this.store.holders().some((h) => h.pid === pid) || this.store.instances().some((i) => i.pid === pid)) {
      try { this.exits?.watch(pid) } catch { /* the reaper's rounds cover it */ }
    }
    return out
  }

  /**
   * Leases of pinned holders found dead since the last look (proc.ts): released before anyone with the same
   * pid gets a lease, since a newcomer started within the dead one's clock tick has the same start time too.
   */
  releaseDied(): LeaseRow[] {
    const died = takeDied()
    if (died.length === 0) return []
    const released = this.store.transaction(() => died.flatMap(([pid, start]) => {
      const rows = this.store.leasesOfHolder(pid, start)
      for (const l of rows) this.store.deleteLease(l)
      return rows
    }))
    for (const row of released) this.hub.publish({type: 'lease.released', data: {...toLease(row), reason: 'holder-exited'}})
    return released
  }

  /** Release by lease id, or by port when given digits. */
  release(idOrPort: string, reason: ReleaseReason = 'released'): Lease {
    const row = /^\d+$/.test(idOrPort) ? this.store.leaseByPort(Number(idOrPort)) : this.store.leaseById(idOrPort)
    if (!row) throw new StyxyError('NOT_FOUND', `no lease ${/^\d+$/.test(idOrPort) ? 'on port ' : ''}${idOrPort}`)
    this.store.transaction(() => this.store.deleteLease(row))
    const lease = toLease(row)
    this.hub.publish({type: 'lease.released', data: {...lease, reason}})
    return lease
  }

  /** An instance whose holder exited or whose heartbeats stopped goes, with its leases. */
  private expireInstance(row: InstanceRow, reason: string): {instance: Instance; leases: LeaseRow[]} {
    const leases = this.store.transaction(() => {
      const leases = this.store.leasesOfInstance(row.id)
      for (const l of leases) this.store.deleteLease(l)
      this.store.deleteInstance(row.id)
      return leases
    })
    for (const l of leases) this.hub.publish({type: 'lease.released', data: {...toLease(l), reason: 'instance-expired'}})
    const instance = toInstance(row)
    this.hub.publish({type: 'instance.expired', data: {...instance, reason}})
    return {instance, leases}
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
          this.store.deleteLease(l)
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
      const dead = inst.pid !== null && this.polled(inst.pid) && !isSameProcessAlive(inst.pid, inst.pid_start)
      if (!dead && now - inst.last_heartbeat <= this.options.instanceTtlMs) continue
      const {instance, leases} = this.expireInstance(inst, dead ? 'holder exited' : 'heartbeat stopped')
      expired.push(instance)
      ofInstances.push(...leases)
    }
    this.store.transaction(() => {
      // The dead the exit events cannot report: one /proc read per such holder, however many leases it holds.
      // (Reading all of them every round was most of an idle daemon's CPU with 500 holders.)
      for (const h of this.store.holders()) {
        if (!this.polled(h.pid) || isSameProcessAlive(h.pid, h.pid_start)) continue
        this.unwatched.delete(h.pid)
        for (const l of this.store.leasesOfHolder(h.pid, h.pid_start)) {
          this.store.deleteLease(l)
          released.push({row: l, reason: 'holder-exited'})
        }
      }
      // Written at most a few times per grace period: an idle daemon with many listening leases must not write
      // the database on every tick.
      for (const port of listening.keys()) this.store.touchListening(port, seenAt, this.options.listenGraceMs / 2)
      // Forced: everything not listening now, except leases of live holders that have not listened yet (between
      // their bind() and listen(), or an allocation waiting for its server); dead holders went above.
      const quiet = force ? this.store.leases().filter((l) => l.last_listening !== null || l.pid === null) : this.store.quietSince(seenAt - this.options.listenGraceMs)
      for (const l of quiet) {
        if (listening.has(l.port)) continue
        this.store.deleteLease(l)
        released.push({row: l, reason: force ? 'cleanup' : 'not-listening'})
      }
    })
    for (const {row, reason} of released) this.hub.publish({type: 'lease.released', data: {...toLease(row), reason}})
    return {released: [...died, ...ofInstances, ...released.map((r) => r.row)].map(toLease), expiredInstances: expired}
  }
}
