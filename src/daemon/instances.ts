import type {Instance, InstanceRequest} from '../protocol/types.js'
import {StyxyError} from '../protocol/errors.js'
import {toInstance, toLease, type LeaseRow, type Store} from '../store/store.js'
import type {EventHub} from './hub.js'
import {namedProject} from './projects.js'

/** The lease rules instances share with binds and allocations; the coordinator owns them. */
export interface LeaseRules {
  /** The holder's start time, once the leases of holders found dead are gone; throws when `pid` is not running. */
  holderStart(pid: number | undefined): number | null
  dropLease(row: LeaseRow): void
  /** Watches the holder's exit (pidfd), so its instance goes the moment it does. */
  watchHolder(pid: number | null, pidStart: number | null): void
}

/**
 * Instances: a named owner of leases (an agent, an editor session), kept by heartbeats. Registering one checks
 * its pid as a bind would; removing one releases its leases. Expiry is the coordinator's: at the holder's exit, or the reaper's when heartbeats stop.
 */
export class Instances {
  constructor(private readonly store: Store, private readonly hub: EventHub, private readonly leases: LeaseRules) {}

  register(req: InstanceRequest): Instance {
    if (req.id === undefined && req.pid === undefined) throw new StyxyError('VALIDATION_FAILED', 'an instance needs an id or a pid')
    const pidStart = this.leases.holderStart(req.pid)
    const id = req.id ?? `ldpreload-${req.pid}`
    const isNew = !this.store.instanceById(id)
    this.store.transaction(() => this.store.upsertInstance({id, pid: req.pid ?? null, pid_start: pidStart, name: req.name ?? null, project: namedProject(req.project, req.pid), now: Date.now()}))
    const instance = toInstance(this.store.instanceById(id)!)
    if (isNew) this.hub.publish({type: 'instance.registered', data: instance})
    this.leases.watchHolder(req.pid ?? null, pidStart)
    return instance
  }

  heartbeat(id: string): Instance {
    if (!this.store.heartbeat(id, Date.now())) throw new StyxyError('NOT_FOUND', `no instance ${id}`)
    return toInstance(this.store.instanceById(id)!)
  }

  list(): Instance[] {
    return this.store.instances().map(toInstance)
  }

  remove(id: string): Instance {
    const row = this.store.instanceById(id)
    if (!row) throw new StyxyError('NOT_FOUND', `no instance ${id}`)
    const leases = this.store.transaction(() => {
      const leases = this.store.leasesOfInstance(id)
      for (const l of leases) this.leases.dropLease(l)
      this.store.deleteInstance(id)
      return leases
    })
    for (const l of leases) this.hub.publish({type: 'lease.released', data: {...toLease(l), reason: 'instance-expired'}})
    const instance = toInstance(row)
    this.hub.publish({type: 'instance.removed', data: instance})
    return instance
  }
}
