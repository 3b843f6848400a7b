import type {McpServer} from '@modelcontextprotocol/sdk/server/mcp.js'
import {z} from 'zod'
import type {StyxyClient} from '../client/client.js'
import {sinceToIso} from '../core/since.js'
import {listServers, locate, projectHere, toServer, describeQuery, type Located, type ServerQuery} from '../servers/servers.js'
import {stopServer} from '../servers/stop.js'
import {waitForServer} from '../servers/wait.js'
import {answer, ToolError} from './result.js'

// The tools `styxy mcp` offers. Descriptions are written for a model: what the tool answers and when to use it.
// The project is always the one `styxy mcp` runs in (its working directory's git worktree, or STYXY_PROJECT).

const port = z.number().int().min(1).max(65535)
const name = z.string().min(1).max(200)
const service = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9_-]*$/, 'a service type such as dev, api, database')

export interface ToolContext {
  /** A client of a daemon that answers (started if need be). */
  client(): Promise<StyxyClient>
}

function whereNow(found: Located): Record<string, unknown> {
  const s = found.server
  return {port: s.port, address: s.address, url: s.url, askedPort: s.askedPort, moved: s.moved, server: s, others: found.others}
}

function oneQuery(q: ServerQuery, allowed: (keyof ServerQuery)[]): ServerQuery {
  const given = allowed.filter((k) => q[k] !== undefined)
  if (given.length !== 1) throw new ToolError('VALIDATION_FAILED', `give exactly one of ${allowed.join(', ')}`)
  return q
}

export function registerTools(mcp: McpServer, ctx: ToolContext): void {
  mcp.registerTool('list_servers', {
    description: "The dev servers of this project (this worktree) that Styxy knows: name, URL, the port each asked for and the port it really has, command, pid, since when. all: true lists every project's.",
    inputSchema: z.strictObject({all: z.boolean().optional().describe('every project, not only this one')}),
    annotations: {readOnlyHint: true},
  }, (args) => answer(async () => {
    const project = args.all ? null : projectHere()
    return {project: project ?? 'all', servers: await listServers(await ctx.client(), project)}
  }))

  mcp.registerTool('port_of', {
    description: "Where a server of this project listens now. Ask this instead of assuming the port you started it on: Styxy moves a server whose port is taken. Give the port it asked for (e.g. 8000), its name, or its service type.",
    inputSchema: z.strictObject({
      port: port.optional().describe('the port the server asked for'),
      name: name.optional().describe('the server\'s name'),
      service: service.optional().describe('its service type (dev, api, database, ...)'),
    }),
    annotations: {readOnlyHint: true},
  }, (args) => answer(async () => {
    const q = oneQuery(args, ['port', 'name', 'service'])
    const found = await locate(await ctx.client(), q, projectHere())
    if (!found) throw new ToolError('NOT_FOUND', `no server of this project ${describeQuery(q)} (list_servers shows them; start servers with styxy run)`)
    return whereNow(found)
  }))

  mcp.registerTool('wait_for_server', {
    description: 'Wait until a server of this project listens, by the port it asked for or its name, then say where it is. Use after starting a server in the background instead of sleeping. Ends with a TIMEOUT error if none comes up in time.',
    inputSchema: z.strictObject({
      port: port.optional().describe('the port the server asked for'),
      name: name.optional().describe('the server\'s name'),
      timeoutSeconds: z.number().min(0.1).max(600).optional().describe('how long to wait (default 30)'),
    }),
    annotations: {readOnlyHint: true},
  }, (args) => answer(async () => {
    const q = oneQuery({port: args.port, name: args.name}, ['port', 'name'])
    return whereNow(await waitForServer(await ctx.client(), q, projectHere(), Math.round((args.timeoutSeconds ?? 30) * 1000)))
  }))

  mcp.registerTool('allocate_port', {
    description: 'Reserve a free port for a server you are about to start (pass it as PORT or --port). A name makes it findable; asking again with the same name in this project returns the same port.',
    inputSchema: z.strictObject({
      service: service.optional().describe('service type (default: the type of port, else dev)'),
      port: port.optional().describe('the port you would like; a free one near it otherwise'),
      name: name.optional().describe('a name for the lease'),
    }),
  }, (args) => answer(async () => {
    const lease = await (await ctx.client()).allocate({service: args.service ?? (args.port === undefined ? 'dev' : undefined), port: args.port, name: args.name, project: projectHere()})
    return {port: lease.port, leaseId: lease.id, existing: lease.joined, server: toServer(lease)}
  }))

  mcp.registerTool('release_port', {
    description: "Give back a port this project reserved or holds, by port or lease id, when the server will not use it. Another project's leases are refused.",
    inputSchema: z.strictObject({port: port.optional(), leaseId: z.string().min(1).max(256).optional()}),
    annotations: {destructiveHint: true},
  }, (args) => answer(async () => {
    if ((args.port === undefined) === (args.leaseId === undefined)) throw new ToolError('VALIDATION_FAILED', 'give exactly one of port, leaseId')
    const client = await ctx.client()
    const lease = (await client.leases()).find((l) => (args.port !== undefined ? l.port === args.port : l.id === args.leaseId))
    if (!lease) throw new ToolError('NOT_FOUND', `no lease ${args.port !== undefined ? `on port ${args.port}` : args.leaseId}`)
    const project = projectHere()
    if (lease.project !== project) throw new ToolError('NOT_THIS_PROJECT', `the lease on port ${lease.port} belongs to ${lease.project ?? 'no project'}, not to this project (${project})`)
    const released = await client.release(lease.id)
    return {released: toServer(released)}
  }))

  mcp.registerTool('recent_moves', {
    description: "Servers of this project that Styxy moved off a taken port, newest last: the port each asked for (from) and the one it got (to). all: true for every project's.",
    inputSchema: z.strictObject({
      since: z.string().max(64).optional().describe('an ISO time or a duration back from now: 30s, 10m, 2h, 1d (default 1h)'),
      all: z.boolean().optional(),
      limit: z.number().int().min(1).max(500).optional().describe('at most this many, the newest (default 20)'),
    }),
    annotations: {readOnlyHint: true},
  }, (args) => answer(async () => {
    const since = sinceToIso(args.since ?? '1h')
    if (since === null) throw new ToolError('VALIDATION_FAILED', `since takes an ISO time or a duration like 10m, got "${args.since}"`)
    const project = args.all ? null : projectHere()
    const moves = (await (await ctx.client()).reassignments(since)).filter((m) => project === null || m.project === project)
    return {project: project ?? 'all', since, moves: moves.slice(-(args.limit ?? 20))}
  }))

  mcp.registerTool('stop_server', {
    description: "Stop a server of this project, by name or by port (the one it asked for or has): SIGTERM to its process group, SIGKILL if it is still there after the grace period. Other projects' servers are refused.",
    inputSchema: z.strictObject({
      port: port.optional(),
      name: name.optional(),
      graceSeconds: z.number().min(0).max(60).optional().describe('seconds between SIGTERM and SIGKILL (default 5)'),
    }),
    annotations: {destructiveHint: true},
  }, (args) => answer(async () => {
    const q = oneQuery({port: args.port, name: args.name}, ['port', 'name'])
    const stopped = await stopServer(await ctx.client(), q, {project: projectHere(), projectOnly: true}, Math.round((args.graceSeconds ?? 5) * 1000))
    return {...stopped}
  }))
}
