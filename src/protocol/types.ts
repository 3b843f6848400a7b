// Request/response types shared by the daemon, the client, the CLI and the tests.

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
  name: string | null
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
  tcp: {host: string; port: number}
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

export interface AllocationRequest {
  service: string
  port?: number
  name?: string
  instanceId?: string
  pid?: number
  project?: string
}

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

export type BindAction = 'allow' | 'remap' | 'deny'

export interface BindRequest {
  pid: number
  port: number
  family: 'ipv4' | 'ipv6'
  address: string
  command?: string
  cwd?: string
  instanceId?: string
  /** Ports the caller's real bind found in use (EADDRINUSE) since its first ask. */
  taken?: number[]
  /** false: record and answer, never move (STYXY_DISABLE_REASSIGN=1). */
  reassign?: boolean
}

export interface BindResponse {
  action: BindAction
  port: number
  requestedPort: number
  service: string
  leaseId: string | null
  /** True when this process already asked for this port: the notice was already shown. */
  repeat: boolean
  /**
   * True when this answer created the lease: the port was not the caller's before it asked (not an earlier
   * answer, not its instance's allocation). The interceptor checks such a port against the other address
   * family's listeners, which its own bind would not collide with.
   */
  newLease: boolean
  reason?: string
}

export interface InstanceRequest {
  id?: string
  pid?: number
  name?: string
  project?: string
}

/** What `styxy run` leaves to the daemon for when its connection ends (POST /v1/exit-watch). */
export interface ExitWatchRequest {
  /** The command's process: its leases go if it has exited by then. */
  pid: number
  /** The lease the run made for --service/--port, released in any case. */
  leaseId?: string
}

export interface CleanupResponse {
  released: Lease[]
  expiredInstances: Instance[]
}
