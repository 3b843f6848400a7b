import os from 'node:os'
import type {Lease, PortInfo} from '../protocol/types.js'
import {table} from './table.js'

export function holderOf(l: Lease): string {
  return [l.pid ? `pid ${l.pid}` : '', l.instanceId ?? '', l.name ?? ''].filter(Boolean).join(' ') || 'an explicit allocation'
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
  if (!verbose) {
    return table(['PORT', 'SERVICE', 'HOLDER', 'PROJECT', 'COMMAND'], leases.map((l) => [l.port, l.service, holderOf(l), shortProject(l.project), shortCommand(l.command, 60)]))
  }
  const rows = leases.map((l) => [l.port, l.service, l.kind, holderOf(l), l.createdAt, l.id, l.requestedPort ?? '', l.project ?? '', l.command ?? ''])
  return table(['PORT', 'SERVICE', 'KIND', 'HOLDER', 'SINCE', 'LEASE', 'ASKED', 'PROJECT', 'COMMAND'], rows)
}

export function portLines(info: PortInfo): string[] {
  const lines = [`Port ${info.port} is ${info.bound || info.leased ? 'taken' : 'free'}${info.service ? ` (service type ${info.service})` : ''}${info.blocked ? ' - browsers refuse this port' : ''}`]
  // An older daemon does not say (undefined): only an explicit false is below the floor.
  if (info.managed === false) lines.push(`  not managed: Styxy leases and moves ports from ${info.floor} up; ports below the floor are left alone`)
  for (const l of info.listeners) lines.push(`  listening on ${l.family === 'ipv6' ? `[${l.address}]` : l.address}:${info.port}: ${l.pid ? `pid ${l.pid} ${l.command ?? ''}`.trim() : 'another user\'s process'}`)
  if (info.lease) lines.push(`  leased to ${holderOf(info.lease)} (lease ${info.lease.id}, ${info.lease.kind})`)
  return lines
}
