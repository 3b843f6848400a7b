import type {DashboardProject, DashboardServers, DashboardStopped} from '../../protocol/types.js'
import {StyxyError} from '../../protocol/errors.js'
import {toLease} from '../../store/store.js'
import {toServer} from '../../servers/servers.js'
import {StopError, stopHolder} from '../../servers/stop.js'
import type {Coordinator} from '../coordinator.js'
import {isSameProcessAlive, ownerOf} from '../proc.js'

/**
 * Every lease as a server, by project (named ones first, in name order; by port within), each with whether
 * anything listens on its port now: one question to the kernel for all of them, as scan asks it.
 */
export function listServers(coordinator: Coordinator): DashboardServers {
  const rows = coordinator.store.leases()
  const listening = rows.length ? coordinator.kernel.listeners() : new Map<number, unknown>()
  const byProject = new Map<string | null, DashboardProject>()
  for (const row of rows) {
    const project = row.project
    let group = byProject.get(project)
    if (!group) byProject.set(project, (group = {project, servers: []}))
    group.servers.push({...toServer(toLease(row)), listening: listening.has(row.port)})
  }
  const projects = [...byProject.values()].sort((a, b) => (a.project === null ? 1 : b.project === null ? -1 : a.project.localeCompare(b.project)))
  for (const p of projects) p.servers.sort((a, b) => a.port - b.port)
  return {at: new Date().toISOString(), projects}
}

const STOP_CODES = {NOT_OURS: 'HOLDER_NOT_OURS', NO_PROCESS: 'HOLDER_NOT_RUNNING', STILL_RUNNING: 'INTERNAL'} as const

/**
 * The stop button. Only a live lease holder of this user is signalled: a page (or anyone with the cookie) must
 * not be able to signal an arbitrary pid, so the pid must hold a lease now, as the same process that leased
 * (pid and start time), and be ours.
 */
export async function stopHolderOfLease(coordinator: Coordinator, pid: number, graceMs = 5000): Promise<DashboardStopped> {
  const holder = coordinator.store.holders().find((h) => h.pid === pid && isSameProcessAlive(pid, h.pid_start))
  const live = holder && coordinator.store.leasesOfHolder(pid, holder.pid_start)[0]
  if (!live) throw new StyxyError('NOT_A_HOLDER', `pid ${pid} holds no lease now: only a server Styxy leased a port to can be stopped here`)
  const owner = ownerOf(pid)
  if (owner !== process.geteuid?.()) throw new StyxyError('HOLDER_NOT_OURS', `pid ${pid} belongs to uid ${owner}, not to this daemon's user`)
  try {
    return {pid, ...await stopHolder(pid, graceMs, `port ${live.port}`)}
  } catch (error) {
    if (error instanceof StopError && error.code in STOP_CODES) throw new StyxyError(STOP_CODES[error.code as keyof typeof STOP_CODES], error.message)
    throw error
  }
}
