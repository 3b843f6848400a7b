import type {ConfigReload, ConfigTrigger, Lease, Instance, Reassignment} from './types.js'

// Every event has a monotonically increasing seq (per daemon run) so a tail can spot gaps.
interface Base<T extends string, D> {
  seq: number
  at: string
  type: T
  data: D
}

export type StyxyEvent =
  | Base<'daemon.started', {pid: number; version: string}>
  | Base<'daemon.stopping', {pid: number; reason: string}>
  | Base<'lease.created', Lease>
  | Base<'lease.released', Lease & {reason: ReleaseReason}>
  | Base<'bind.allowed', BindEventData>
  | Base<'bind.remapped', BindEventData & Reassignment>
  | Base<'bind.denied', BindEventData & {reason: string}>
  | Base<'connect.followed', FollowEventData>
  | Base<'instance.registered', Instance>
  | Base<'instance.expired', Instance & {reason: string}>
  | Base<'instance.removed', Instance>
  | Base<'config.reloaded', ConfigReload>
  | Base<'config.rejected', {file: string; trigger: ConfigTrigger; message: string}>

export type StyxyEventType = StyxyEvent['type']

export const EVENT_TYPES: readonly StyxyEventType[] = [
  'daemon.started', 'daemon.stopping', 'lease.created', 'lease.released', 'bind.allowed',
  'bind.remapped', 'bind.denied', 'connect.followed', 'instance.registered', 'instance.expired', 'instance.removed',
  'config.reloaded', 'config.rejected',
]

/**
 * How the hub closes a subscription (RFC 6455 close codes; 4000-4999 are the application's own). `styxy tail`
 * reports each in one line and reconnects.
 */
export const CloseCodes = {
  /** The daemon is stopping (a restart, say): reconnect when it is back. */
  DAEMON_STOPPING: 1001,
  /**
   * This subscriber fell behind: it did not read while events went on, and what it had not read would have
   * grown the daemon's memory. Events from then until it reconnects are not delivered to it.
   */
  TOO_SLOW: 4008,
} as const

export type ReleaseReason = 'released' | 'holder-exited' | 'not-listening' | 'instance-expired' | 'cleanup'

/** A process of `project` connected to localhost:`from` and reached its project's server on `to`. */
export interface FollowEventData {
  pid: number
  from: number
  to: number
  /** The same ports under the names the bind events use (so `tail --port` finds either). */
  requestedPort: number
  port: number
  project: string | null
  command: string | null
}

export interface BindEventData {
  pid: number
  requestedPort: number
  port: number
  service: string
  command?: string | null
  leaseId?: string
  /** The binder's project: its worktree's top, or STYXY_PROJECT (null when it sent no working directory). */
  project?: string | null
}
