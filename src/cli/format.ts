import type {Lease, PortInfo} from '../protocol/types.js'
import {table} from './table.js'
import {followMoves} from '../core/follow.js'

export function holderOf(l: Lease): string {
  return [l.pid ? `pid ${l.pid}` : '', l.instanceId ?? '', l.name ?? ''].filter(Boolean).join(' ') || 'an explicit allocation'
}

/** A moved lease's port with the one it asked for: `8002 (asked 8000)`. */
function portCell(l: Lease): string {
  return l.requestedPort !== null && l.requestedPort !== l.port ? `${l.port} (asked ${l.requestedPort})` : String(l.port)
}

export function leaseTable(leases: Lease[], verbose: boolean): string {
  if (leases.length === 0) return 'No active leases.'
  const base = ['PORT', 'SERVICE', 'KIND', 'HOLDER', 'SINCE']
  const rows = leases.map((l) => {
    const r = [portCell(l), l.service, l.kind, holderOf(l), l.createdAt]
    return verbose ? [...r, l.id, l.requestedPort ?? '', l.project ?? '', l.command ?? ''] : r
  })
  const lines = [table(verbose ? [...base, 'LEASE', 'ASKED', 'PROJECT', 'COMMAND'] : base, rows)]
  const moves = followMoves([...leases].sort((a, b) => b.createdAt.localeCompare(a.createdAt)), (port) => leases.find((l) => l.port === port)?.project)
  if (moves.length) lines.push('', 'Followed (a connect to localhost:ASKED from the project reaches PORT):')
  for (const m of moves) lines.push(`  ${m.asked} -> ${m.port}  ${m.project}`)
  return lines.join('\n')
}

export function portLines(info: PortInfo): string[] {
  const lines = [`Port ${info.port} is ${info.bound || info.leased ? 'taken' : 'free'}${info.service ? ` (service type ${info.service})` : ''}${info.blocked ? ' - browsers refuse this port' : ''}`]
  for (const l of info.listeners) lines.push(`  listening on ${l.family === 'ipv6' ? `[${l.address}]` : l.address}:${info.port}: ${l.pid ? `pid ${l.pid} ${l.command ?? ''}`.trim() : 'another user\'s process'}`)
  if (info.lease) lines.push(`  leased to ${holderOf(info.lease)} (lease ${info.lease.id}, ${info.lease.kind})`)
  return lines
}
