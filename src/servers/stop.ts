import type {StyxyClient} from '../client/client.js'
import {pollUntil} from '../retry.js'
import {allProcesses, isOurs, ownLine, procInfo, withDescendants, type ProcInfo} from './process.js'
import {describeQuery, listenerAsServer, locate, type Server, type ServerQuery} from './servers.js'

// `styxy stop` and the MCP tool stop_server: one way to stop a server. Its process group gets SIGTERM (a dev
// server is often a tree: npm, a shell, node, a watcher), and SIGKILL once the grace period is over.

/** A refusal or a miss, with a stable code (the CLI maps it to an exit code, the MCP server to a tool error). */
export class StopError extends Error {
  constructor(readonly code: 'NOT_FOUND' | 'NOT_THIS_PROJECT' | 'AMBIGUOUS' | 'NO_PROCESS' | 'NOT_OURS' | 'STILL_RUNNING', message: string) {
    super(message)
  }
}

export interface StopScope {
  /** The caller's project. */
  project: string
  /** Only servers of `project` (the MCP server); otherwise this project's first, then any of this user's. */
  projectOnly: boolean
}

export interface Stopped {
  server: Server
  /** The process group signalled, or null when the processes were signalled one by one (see `signalTargets`). */
  pgid: number | null
  /** Every process signalled. */
  pids: number[]
  /** SIGKILL when something outlived the grace period after SIGTERM. */
  signal: 'SIGTERM' | 'SIGKILL'
}

/** Which server `target` means: a number is the asked port (or the real one), anything else a name. */
export function parseTarget(target: string): ServerQuery {
  return /^\d+$/.test(target) ? {port: Number(target)} : {name: target}
}

async function choose(client: StyxyClient, q: ServerQuery, scope: StopScope): Promise<Server> {
  const here = await locate(client, q, scope.project)
  if (here) {
    if (q.name !== undefined && here.others.length) {
      throw new StopError('AMBIGUOUS', `${here.others.length + 1} servers of this project are named "${q.name}": stop one by port`)
    }
    return here.server
  }
  const anywhere = await locate(client, q, null)
  if (!anywhere) throw new StopError('NOT_FOUND', `no server ${describeQuery(q)} in ${scope.projectOnly ? 'this project' : 'any project'}`)
  if (scope.projectOnly) {
    throw new StopError('NOT_THIS_PROJECT', `the server ${describeQuery(q)} belongs to ${anywhere.server.project ?? 'no project'}, not to this project (${scope.project}): only this project's servers can be stopped here`)
  }
  const all = [anywhere.server, ...anywhere.others]
  // A port another project asked for is that project's business; one a server really has is unambiguous.
  const exact = q.port !== undefined ? all.filter((s) => s.port === q.port) : all
  if (exact.length === 1) return exact[0]
  if (exact.length === 0) throw new StopError('NOT_FOUND', `no server of this project ${describeQuery(q)}, and none of another project has port ${q.port}`)
  throw new StopError('AMBIGUOUS', `${exact.length} servers ${describeQuery(q)} in other projects (${[...new Set(exact.map((s) => s.project))].join(', ')}): run stop from the project's directory`)
}

/**
 * The processes a stop signals: the holder's whole process group, unless that group also holds this process
 * or one of its ancestors (a server started from the same non-interactive shell as its stopper, a test run),
 * in which case the holder and its descendants, one by one. Only this user's processes are ever signalled.
 */
export function signalTargets(pid: number): {pgid: number | null; targets: ProcInfo[]} {
  const all = allProcesses()
  const holder = all.find((p) => p.pid === pid)
  const line = ownLine()
  if (!holder || line.has(pid)) return {pgid: null, targets: []}
  const mine = new Set(all.filter((p) => line.has(p.pid)).map((p) => p.pgid))
  if (holder.pgid > 1 && !mine.has(holder.pgid)) {
    return {pgid: holder.pgid, targets: all.filter((p) => p.pgid === holder.pgid && isOurs(p) && !line.has(p.pid))}
  }
  return {pgid: null, targets: withDescendants(pid, all).filter((p) => isOurs(p) && !line.has(p.pid))}
}

function send(pgid: number | null, targets: ProcInfo[], signal: NodeJS.Signals): void {
  if (pgid !== null) {
    try {
      process.kill(-pgid, signal)
      return
    } catch {
      // The group is gone, or holds a process we may not signal: one by one, then.
    }
  }
  for (const p of targets) {
    try {
      process.kill(p.pid, signal)
    } catch {
      // Already gone.
    }
  }
}

/** Resolves once none of `pids` runs (a zombie counts as gone), or false after `ms`. */
async function gone(pids: number[], ms: number): Promise<boolean> {
  try {
    return await pollUntil(() => (pids.every((p) => procInfo(p) === null) ? true : undefined), {
      timeoutMs: ms, firstMs: 5, maxMs: 100, timeoutError: () => new Error('still running'),
    })
  } catch {
    return false
  }
}

/** Stop the server `q` means within `scope`: SIGTERM to its process group, SIGKILL after `graceMs`. */
export async function stopServer(client: StyxyClient, q: ServerQuery, scope: StopScope, graceMs = 5000): Promise<Stopped> {
  const server = await choose(client, q, scope)
  // An allocation made without a process (allocate, allocate_port) is held by whoever listens on its port.
  const pid = server.pid ?? listenerAsServer(await client.port(server.port))?.pid ?? null
  if (pid === null) throw new StopError('NO_PROCESS', `the lease on port ${server.port} has no process and nothing listens there: release it instead (styxy release ${server.port})`)
  return {server, ...await stopHolder(pid, graceMs, `port ${server.port}`)}
}

/**
 * SIGTERM to `pid`'s process group (or to it and its descendants, see signalTargets), SIGKILL after `graceMs`.
 * `stopServer` and the daemon's dashboard both stop this way; `what` names the server in refusals.
 */
export async function stopHolder(pid: number, graceMs: number, what: string): Promise<Omit<Stopped, 'server'>> {
  const holder = procInfo(pid)
  if (!holder) throw new StopError('NO_PROCESS', `pid ${pid} (${what}) is not running any more`)
  if (!isOurs(holder)) throw new StopError('NOT_OURS', `pid ${pid} (${what}) is another user's process`)
  const {pgid, targets} = signalTargets(pid)
  if (targets.length === 0) throw new StopError('NOT_OURS', `pid ${pid} (${what}) is this very process or one of its parents`)
  const pids = targets.map((p) => p.pid)
  send(pgid, targets, 'SIGTERM')
  if (await gone(pids, graceMs)) return {pgid, pids, signal: 'SIGTERM'}
  send(pgid, targets.filter((p) => procInfo(p.pid) !== null), 'SIGKILL')
  if (!(await gone(pids, 2000))) throw new StopError('STILL_RUNNING', `pid ${pids.filter((p) => procInfo(p) !== null).join(', ')} still running after SIGKILL`)
  return {pgid, pids, signal: 'SIGKILL'}
}

/** One line: what was stopped, and how. */
export function describeStopped(s: Stopped): string {
  const what = [s.server.name ? `"${s.server.name}"` : '', s.server.service ? `${s.server.service} server` : 'server'].filter(Boolean).join(' ')
  const where = `port ${s.server.port}${s.server.moved ? ` (asked ${s.server.askedPort})` : ''}`
  const who = `pid ${s.server.pid ?? s.pids[0]}${s.server.command ? ` ${s.server.command}` : ''}`
  const how = s.pgid !== null ? `process group ${s.pgid}` : 'the process and its children'
  return `Stopped ${what} on ${where}: ${who}; ${how} (${s.pids.length} process${s.pids.length === 1 ? '' : 'es'}) ${s.signal === 'SIGTERM' ? 'ended on SIGTERM' : `killed with SIGKILL after the grace period`}`
}
