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
  | Base<'instance.registered', Instance>
  | Base<'instance.expired', Instance & {reason: string}>
  | Base<'instance.removed', Instance>
  | Base<'config.reloaded', ConfigReload>
  | Base<'config.rejected', {file: string; trigger: ConfigTrigger; message: string}>

export type StyxyEventType = StyxyEvent['type']

export const EVENT_TYPES: readonly StyxyEventType[] = [
  'daemon.started', 'daemon.stopping', 'lease.created', 'lease.released', 'bind.allowed',
  'bind.remapped', 'bind.denied', 'instance.registered', 'instance.expired', 'instance.removed', 'config.reloaded',
  'config.rejected',
]

export type ReleaseReason = 'released' | 'holder-exited' | 'not-listening' | 'instance-expired' | 'cleanup'

export interface BindEventData {
  pid: number
  requestedPort: number
  port: number
  service: string
  command?: string | null
  leaseId?: string
}
