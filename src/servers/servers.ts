import path from 'node:path'
import type {StyxyClient} from '../client/client.js'
import type {Lease, LeaseKind, PortInfo} from '../protocol/types.js'
import {projectOf, projectRoot} from '../shared/project.js'
import {projectOfProcess} from './process.js'

// Servers as the CLI and `styxy mcp` speak of them: a lease seen from its project, and a listener of this
// project that Styxy never leased (started without it) when nothing leased answers.

export interface Server {
  /** The lease's name (`run --name`, `allocate -n`, else derived from its project and type), null for older leases. */
  name: string | null
  /** `http://NAME.localhost:<proxy port>/`: reaches it wherever it moves (the daemon's names proxy); null without one. */
  url: string | null
  /** Where it listens now. */
  port: number
  /** The port it asked for: `port` unless it was moved. */
  askedPort: number
  moved: boolean
  /** `http://localhost:<port>/`: the address now, which changes when it moves. */
  address: string
  service: string | null
  project: string | null
  command: string | null
  pid: number | null
  /** When the lease was made (ISO time). */
  since: string | null
  kind: LeaseKind | 'listener'
  leaseId: string | null
}

export interface ServerQuery {
  /** The port asked for (or, failing that, the port it has). */
  port?: number
  name?: string
  service?: string
}

/**
 * The project a command speaks for: the working directory's by the rule every process follows (STYXY_PROJECT,
 * else its git worktree), or, given a directory (`--project DIR`), that directory's worktree.
 */
export function projectHere(dir?: string, env: NodeJS.ProcessEnv = process.env): string {
  return dir === undefined ? projectOf(process.cwd(), env) : projectRoot(path.resolve(dir))
}

export function toServer(l: Lease): Server {
  const asked = l.requestedPort ?? l.port
  return {
    name: l.name, url: l.url ?? null, port: l.port, askedPort: asked, moved: asked !== l.port, address: `http://localhost:${l.port}/`,
    service: l.service, project: l.project, command: l.command, pid: l.pid, since: l.createdAt, kind: l.kind, leaseId: l.id,
  }
}

/** Leases of `project` (exact match; null: every project), as servers. */
export async function listServers(client: StyxyClient, project: string | null): Promise<Server[]> {
  const leases = await client.leases()
  return leases.filter((l) => project === null || l.project === project).map(toServer)
}

function newestFirst(a: Lease, b: Lease): number {
  return b.createdAt.localeCompare(a.createdAt)
}

/**
 * The leases a query means, best first: by port, those that asked for it (bind leases, the newest, first),
 * then one that has it; by name or service, the newest first.
 */
export function matchLeases(leases: readonly Lease[], q: ServerQuery): Lease[] {
  let out = [...leases]
  if (q.name !== undefined) out = out.filter((l) => l.name === q.name)
  if (q.service !== undefined) out = out.filter((l) => l.service === q.service)
  if (q.port !== undefined) {
    const asked = out.filter((l) => (l.requestedPort ?? l.port) === q.port).sort((a, b) => (a.kind === b.kind ? newestFirst(a, b) : a.kind === 'bind' ? -1 : 1))
    const has = out.filter((l) => l.port === q.port && !asked.includes(l))
    return [...asked, ...has]
  }
  return out.sort(newestFirst)
}

export function describeQuery(q: ServerQuery): string {
  const parts = [q.name !== undefined ? `named "${q.name}"` : '', q.service !== undefined ? `of type ${q.service}` : '', q.port !== undefined ? `asking for port ${q.port}` : '']
  return parts.filter(Boolean).join(', ') || 'at all'
}

/** A listener on the port that no lease accounts for, as a server (its project read from /proc), or null. */
export function listenerAsServer(info: PortInfo): Server | null {
  const l = info.listeners.find((x) => x.pid !== null)
  if (!l || l.pid === null) return null
  return {
    name: null, url: null, port: info.port, askedPort: info.port, moved: false, address: `http://localhost:${info.port}/`,
    service: info.service, project: projectOfProcess(l.pid), command: l.command, pid: l.pid, since: null, kind: 'listener', leaseId: null,
  }
}

export interface Located {
  server: Server
  /** Other servers the query matched, after the one chosen. */
  others: Server[]
}

/**
 * Where the server a query means is now, among `project`'s (null: every project's). By port, a listener of
 * the project that Styxy never leased counts too. Null when nothing matches.
 */
export async function locate(client: StyxyClient, q: ServerQuery, project: string | null): Promise<Located | null> {
  const leases = (await client.leases()).filter((l) => project === null || l.project === project)
  const matched = matchLeases(leases, q).map(toServer)
  if (matched.length) return {server: matched[0], others: matched.slice(1)}
  if (q.port === undefined || q.name !== undefined || q.service !== undefined) return null
  const listener = listenerAsServer(await client.port(q.port))
  if (listener && (project === null || listener.project === project)) return {server: listener, others: []}
  return null
}
