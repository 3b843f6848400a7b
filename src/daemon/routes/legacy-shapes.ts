// The first Styxy's answer shapes (snake_case), made from this daemon's leases, listeners and instances.
import path from 'node:path'
import type {Instance, Lease, Listener, PortInfo} from '../../protocol/types.js'
import {StyxyError} from '../../protocol/errors.js'
import {describeZodError} from '../../protocol/schemas.js'
import type {z} from 'zod'

/** A lease as the first API's allocation record; `lockId` (camelCase there too) is the lease id. */
export function allocationRecord(l: Lease) {
  return {
    port: l.port, service_type: l.service, service_name: l.name, instance_id: l.instanceId, project_path: l.project,
    lockId: l.id, allocated_at: l.createdAt, pid: l.pid, kind: l.kind, command: l.command, last_listening_at: l.lastListeningAt,
  }
}

/** The first listener's process, as the first API's system_usage. */
export function systemUsage(info: PortInfo) {
  if (!info.bound) return null
  const l: Listener = info.listeners.find((x) => x.pid !== null) ?? info.listeners[0]
  return {pid: l.pid, command: l.command, process: processName(l.command), address: l.address, family: l.family, protocol: 'tcp', state: 'LISTEN'}
}

export function processName(command: string | null): string | null {
  const first = command?.trim().split(/\s+/)[0]
  return first ? path.basename(first) : null
}

export function instanceRecord(i: Instance, leases: Lease[]) {
  return {
    instance_id: i.id, working_directory: i.project, registered_at: i.registeredAt, last_heartbeat: i.lastHeartbeatAt,
    active_allocations: leases.map(allocationRecord), metadata: {}, pid: i.pid,
  }
}

/** Parse or refuse with a 400 in the legacy shape (the error middleware turns VALIDATION_FAILED into 400). */
export function legacyValidate<T extends z.ZodType>(schema: T, value: unknown, message?: string): z.infer<T> {
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw new StyxyError('VALIDATION_FAILED', message ?? describeZodError(parsed.error))
  return parsed.data
}
