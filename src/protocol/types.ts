// Request/response types shared by the daemon, the client, the CLI and the tests. What crosses the wire with a
// schema (schemas.ts) takes its type from that schema, so the two cannot disagree; the rest are answers no one
// validates. Type-only imports: the client's bundle must not load zod for them.
import type {z} from 'zod'
import type {
  AllocationRequestSchema, BindActionSchema, BindRequestSchema, BindResponseSchema, ExitWatchRequestSchema, FollowReportSchema, InstanceRequestSchema,
} from './schemas.js'
import type {Server} from '../servers/servers.js'

export interface ServiceType {
  name: string
  description: string
  range: [number, number]
  preferredPorts: number[]
  /** One holder shared by all: a second allocation joins the existing lease. */
  singleton: boolean
  source: 'builtin' | 'config'
}

export type LeaseKind = 'allocation' | 'bind'

export interface Lease {
  id: string
  port: number
  service: string
  kind: LeaseKind
  /** The port the holder asked for (differs from `port` after a remap). */
  requestedPort: number | null
  pid: number | null
  instanceId: string | null
  /** The server's name (`styxy run --name`, else derived from its project and type: src/core/names.ts). */
  name: string | null
  /** `http://NAME.localhost:<proxy port>/`: reaches the server wherever it moves; null without a host-shaped name. */
  url: string | null
  project: string | null
  command: string | null
  createdAt: string
  /** Last time the kernel showed a listener on the port; null if never seen. */
  lastListeningAt: string | null
}

export interface Instance {
  id: string
  pid: number | null
  name: string | null
  project: string | null
  registeredAt: string
  lastHeartbeatAt: string
}

export interface Reassignment {
  at: string
  pid: number
  from: number
  to: number
  service: string
  command?: string | null
  project?: string | null
}

export interface Health {
  ok: true
  version: string
  pid: number
  schemaVersion: number
  /** The names proxy's port (`http://NAME.localhost:<port>/`), while it listens; null when off or not yet. */
  proxyPort: number | null
}

export interface Status {
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
  leases: number
  leasesByService: Record<string, number>
  instances: number
  reassignments: number
  eventSubscribers: number
  /** `styxy run` sessions holding an exit watch now. */
  watchedRuns: number
  paths: {stateDir: string; socket: string; database: string; token: string; log: string; audit: string}
  /**
   * The TCP fallback. Off when its port was taken at start (another user's daemon, any program): the daemon
   * then serves on the Unix socket alone and tries the port again every `retryMs` at most 30 s.
   */
  tcp: {host: string; port: number; listening: boolean; error: string | null; retryMs: number | null}
  /** The names proxy (its own loopback port, taken or not like TCP's); null when turned off (STYXY_PROXY_PORT=off). */
  proxy: {host: string; port: number; listening: boolean; error: string | null; retryMs: number | null} | null
  kernel: KernelStatus
}

/** How the daemon asks the kernel who listens (sock_diag, or reading /proc) and learns of exits (pidfd, or polling). */
export interface KernelStatus {
  sockets: 'sock_diag' | 'proc'
  exits: 'pidfd' | 'poll'
  /** Why a fallback is in use; null when neither is. */
  reason: string | null
  /** Questions asked of the kernel, and the sockets it described in its answers, since the daemon started. */
  queries: number
  examined: number
  /** Holders whose exit the daemon is watching now. */
  watching: number
}

export type AllocationRequest = z.infer<typeof AllocationRequestSchema>

export interface AllocationResponse extends Lease {
  /** True when a singleton type's existing holder was returned instead of a new lease. */
  joined: boolean
}

export interface Listener {
  address: string
  family: 'ipv4' | 'ipv6'
  inode: number
  pid: number | null
  command: string | null
}

export interface PortInfo {
  port: number
  /** False below the floor (STYXY_MIN_PORT, 1024): Styxy neither leases nor moves such ports. */
  managed: boolean
  floor: number
  bound: boolean
  listeners: Listener[]
  leased: boolean
  lease: Lease | null
  service: string | null
  blocked: boolean
}

export interface SuggestResponse {
  service: string
  requested: string
  ports: number[]
}

export type BindAction = z.infer<typeof BindActionSchema>

export type BindRequest = z.infer<typeof BindRequestSchema>

export type BindResponse = z.infer<typeof BindResponseSchema>

export type InstanceRequest = z.infer<typeof InstanceRequestSchema>

export type ExitWatchRequest = z.infer<typeof ExitWatchRequestSchema>

export type FollowReport = z.infer<typeof FollowReportSchema>

export interface FollowAnswer {
  /** False when this process's follow of this port was already told: no second event. */
  published: boolean
}

/** What made the daemon read its config file: SIGHUP, a request (`styxy daemon reload`), or the file's directory changing. */
export type ConfigTrigger = 'signal' | 'request' | 'watch'

export interface ConfigReload {
  file: string
  exists: boolean
  trigger: ConfigTrigger
  /** Whether the types differ from the ones in use before. */
  changed: boolean
  serviceTypes: number
}

export interface CleanupResponse {
  released: Lease[]
  expiredInstances: Instance[]
}

/** `styxy dashboard`: the one-time link that logs a browser in. */
export interface DashboardLogin {
  url: string
  /** When the link stops working (ISO time): 60 s after it was made, or at its first use. */
  expiresAt: string
  port: number
}

/** A lease as the dashboard shows it: a server, and whether anything listens on its port now (asked of the kernel). */
export interface DashboardServer extends Server {
  listening: boolean
}

export interface DashboardProject {
  /** The worktree (or STYXY_PROJECT); null for leases made without one. */
  project: string | null
  servers: DashboardServer[]
}

export interface DashboardServers {
  at: string
  projects: DashboardProject[]
}

/** What the dashboard's stop did: the processes signalled, and whether SIGKILL was needed. */
export interface DashboardStopped {
  pid: number
  pgid: number | null
  pids: number[]
  signal: 'SIGTERM' | 'SIGKILL'
}
