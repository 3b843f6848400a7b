import os from 'node:os'
import type {Lease, PortInfo} from '../protocol/types.js'
import {table} from './table.js'
import {followMoves} from '../core/follow.js'

export function holderOf(l: Lease): string {
  return [l.pid ? `pid ${l.pid}` : '', l.instanceId ?? '', l.name ?? ''].filter(Boolean).join(' ') || 'an explicit allocation'
}

/** The holder in a table with a URL column: the name is in the URL already. */
function holderCell(l: Lease): string {
  return l.url ? [l.pid ? `pid ${l.pid}` : '', l.instanceId ?? ''].filter(Boolean).join(' ') || 'an explicit allocation' : holderOf(l)
}

/** A moved lease's port with the one it asked for: `8002 (asked 8000)`. */
function portCell(l: Lease): string {
  return l.requestedPort !== null && l.requestedPort !== l.port ? `${l.port} (asked ${l.requestedPort})` : String(l.port)
}

/** A project directory for a table: the home directory as ~. */
export function shortProject(project: string | null, home = os.homedir()): string {
  if (!project) return ''
  return home && (project === home || project.startsWith(home + '/')) ? '~' + project.slice(home.length) : project
}

/** A command line for a table: its program by name, not by path, cut at `max` characters. */
function shortCommand(command: string | null, max: number): string {
  if (!command) return ''
  const text = command.replace(/^\S*\//, '')
  return text.length > max ? text.slice(0, max - 1) + '…' : text
}

/**
 * Project and command by default: five worktrees running the same command are told apart by their project.
 * Verbose adds the lease's kind, creation time, id and asked port, and shows commands whole.
 */
export function leaseTable(leases: Lease[], verbose: boolean): string {
  if (leases.length === 0) return 'No active leases.'
  const lines = [verbose
    ? table(['PORT', 'SERVICE', 'URL', 'KIND', 'HOLDER', 'SINCE', 'LEASE', 'ASKED', 'PROJECT', 'COMMAND'],
      leases.map((l) => [portCell(l), l.service, l.url ?? '', l.kind, holderCell(l), l.createdAt, l.id, l.requestedPort ?? '', l.project ?? '', l.command ?? '']))
    : table(['PORT', 'SERVICE', 'URL', 'HOLDER', 'PROJECT', 'COMMAND'], leases.map((l) => [portCell(l), l.service, l.url ?? '', holderCell(l), shortProject(l.project), shortCommand(l.command, 60)]))]
  const moves = followMoves([...leases].sort((a, b) => b.createdAt.localeCompare(a.createdAt)), (port) => leases.find((l) => l.port === port)?.project)
  if (moves.length) lines.push('', 'Followed (a connect to localhost:ASKED from the project reaches PORT):')
  for (const m of moves) lines.push(`  ${m.asked} -> ${m.port}  ${m.project}`)
  return lines.join('\n')
}

export function portLines(info: PortInfo): string[] {
  const lines = [`Port ${info.port} is ${info.bound || info.leased ? 'taken' : 'free'}${info.service ? ` (service type ${info.service})` : ''}${info.blocked ? ' - browsers refuse this port' : ''}`]
  // An older daemon does not say (undefined): only an explicit false is below the floor.
  if (info.managed === false) lines.push(`  not managed: Styxy leases and moves ports from ${info.floor} up; ports below the floor are left alone`)
  for (const l of info.listeners) lines.push(`  listening on ${l.family === 'ipv6' ? `[${l.address}]` : l.address}:${info.port}: ${l.pid ? `pid ${l.pid} ${l.command ?? ''}`.trim() : 'another user\'s process'}`)
  if (info.lease) lines.push(`  leased to ${holderOf(info.lease)} (lease ${info.lease.id}, ${info.lease.kind})`)
  return lines
}
