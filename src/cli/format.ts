import type {Lease, PortInfo} from '../protocol/types.js'
import {table} from './table.js'

export function holderOf(l: Lease): string {
  return [l.pid ? `pid ${l.pid}` : '', l.instanceId ?? '', l.name ?? ''].filter(Boolean).join(' ') || 'an explicit allocation'
}

export function leaseTable(leases: Lease[], verbose: boolean): string {
  if (leases.length === 0) return 'No active leases.'
  const base = ['PORT', 'SERVICE', 'KIND', 'HOLDER', 'SINCE']
  const rows = leases.map((l) => {
    const r = [l.port, l.service, l.kind, holderOf(l), l.createdAt]
    return verbose ? [...r, l.id, l.requestedPort ?? '', l.project ?? '', l.command ?? ''] : r
  })
  return table(verbose ? [...base, 'LEASE', 'ASKED', 'PROJECT', 'COMMAND'] : base, rows)
}

export function portLines(info: PortInfo): string[] {
  const lines = [`Port ${info.port} is ${info.bound || info.leased ? 'taken' : 'free'}${info.service ? ` (service type ${info.service})` : ''}${info.blocked ? ' - browsers refuse this port' : ''}`]
  for (const l of info.listeners) lines.push(`  listening on ${l.family === 'ipv6' ? `[${l.address}]` : l.address}:${info.port}: ${l.pid ? `pid ${l.pid} ${l.command ?? ''}`.trim() : 'another user\'s process'}`)
  if (info.lease) lines.push(`  leased to ${holderOf(info.lease)} (lease ${info.lease.id}, ${info.lease.kind})`)
  return lines
}
