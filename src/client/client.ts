import fs from 'node:fs'
import {createRequire} from 'node:module'
import type {Socket} from 'node:net'
import type WebSocket from 'ws'
import {routePath, type RouteName, Routes} from '../protocol/routes.js'
import type {ErrorBody} from '../protocol/errors.js'
import type {StyxyEvent} from '../protocol/events.js'
import type {
  AllocationRequest, AllocationResponse, BindRequest, DashboardLogin, BindResponse, CleanupResponse, ConfigReload, ExitWatchRequest, FollowAnswer, FollowReport, Health, Instance, InstanceRequest, Lease,
  PortInfo, Reassignment, ServiceType, Status, SuggestResponse,
} from '../protocol/types.js'
import {checkStateDir, endpointFromEnv, hold, send, TransportError, type Endpoint, type HeldRequest} from './transport.js'

/** An error answered by the daemon, with its stable code. */
export class ApiError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) {
    super(message)
  }
}

export {TransportError}

export interface ClientOptions {
  endpoint?: Endpoint
  timeoutMs?: number
}

/** The one typed client: the CLI and the tests use it; nobody else builds URLs. */
export class StyxyClient {
  readonly endpoint: Endpoint
  private readonly timeoutMs: number

  constructor(options: ClientOptions = {}) {
    this.endpoint = options.endpoint ?? endpointFromEnv()
    this.timeoutMs = options.timeoutMs ?? 5000
  }

  static fromEnv(env: NodeJS.ProcessEnv, timeoutMs?: number): StyxyClient {
    return new StyxyClient({endpoint: endpointFromEnv(env), timeoutMs})
  }

  private async call<T>(name: RouteName, params: Record<string, string | number> = {}, body?: unknown, query?: Record<string, string | number | boolean | undefined>): Promise<T> {
    let path = routePath(name, params)
    const q = Object.entries(query ?? {}).filter(([, v]) => v !== undefined)
    if (q.length) path += '?' + new URLSearchParams(q.map(([k, v]) => [k, String(v)])).toString()
    const res = await send(this.endpoint, Routes[name].method, path, body, this.timeoutMs)
    if (name === 'metrics' && res.status === 200) return res.body as T
    let json: unknown
    try {
      json = res.body ? JSON.parse(res.body) : undefined
    } catch {
      throw new TransportError('BAD_RESPONSE', `the daemon answered ${res.status} with a body that is not JSON`)
    }
    if (res.status >= 400) {
      const err = (json as ErrorBody | undefined)?.error
      throw new ApiError(err?.code ?? 'HTTP_' + res.status, err?.message ?? `HTTP ${res.status}`, res.status)
    }
    return json as T
  }

  health(): Promise<Health> { return this.call('health') }
  status(): Promise<Status> { return this.call('status') }
  serviceTypes(): Promise<ServiceType[]> { return this.call('serviceTypes') }
  reloadConfig(): Promise<ConfigReload> { return this.call('reloadConfig') }
  metrics(): Promise<string> { return this.call('metrics') }
  allocate(req: AllocationRequest): Promise<AllocationResponse> { return this.call('allocate', {}, req) }
  leases(service?: string): Promise<Lease[]> { return this.call('allocations', {}, undefined, {service}) }
  release(idOrPort: string | number): Promise<Lease> { return this.call('release', {id: idOrPort}) }
  port(port: number): Promise<PortInfo> { return this.call('port', {port}) }
  scan(start: number, end: number): Promise<PortInfo[]> { return this.call('scan', {}, undefined, {start, end}) }
  suggest(service: string, count?: number): Promise<SuggestResponse> { return this.call('suggest', {service}, undefined, {count}) }
  bind(req: BindRequest): Promise<BindResponse> { return this.call('bind', {}, req) }
  reportFollow(req: FollowReport): Promise<FollowAnswer> { return this.call('follow', {}, req) }
  registerInstance(req: InstanceRequest): Promise<Instance> { return this.call('registerInstance', {}, req) }
  heartbeat(id: string): Promise<Instance> { return this.call('heartbeat', {id}) }
  instances(): Promise<Instance[]> { return this.call('instances') }
  removeInstance(id: string): Promise<Instance> { return this.call('removeInstance', {id}) }
  reassignments(since?: string): Promise<Reassignment[]> { return this.call('reassignments', {}, undefined, {since}) }
  cleanup(force = false): Promise<CleanupResponse> { return this.call('cleanup', {}, undefined, {force: force || undefined}) }
  releaseExited(pid: number): Promise<CleanupResponse> { return this.call('cleanup', {}, undefined, {pid}) }
  /** A one-time link that logs a browser into the dashboard (`styxy dashboard`). */
  dashboardLogin(): Promise<DashboardLogin> { return this.call('dashboardLogin') }
  /** `styxy run`'s exit watch: the daemon releases `req` when this request's connection ends. */
  watchExit(req: ExitWatchRequest, connected?: Socket): HeldRequest {
    return hold(this.endpoint, Routes.exitWatch.method, routePath('exitWatch'), req, connected)
  }

  /** Raw access for tests of the wire itself (legacy routes, malformed input). */
  raw(method: string, path: string, body?: unknown) {
    return send(this.endpoint, method, path, body, this.timeoutMs)
  }

  /** The live event stream: over the Unix socket, or over TCP with the token when `via` says so. */
  events(via: 'unix' | 'tcp' = 'unix'): WebSocket {
    // Loaded on first use: most commands (and `styxy run`, whose start-up is on every dev server's path) never need it.
    checkStateDir(this.endpoint)
    const WebSocket = createRequire(import.meta.url)('ws') as typeof import('ws').default
    if (via === 'unix') return new WebSocket(`ws+unix://${this.endpoint.socket}:${Routes.events.path}`, {perMessageDeflate: false})
    const token = fs.readFileSync(this.endpoint.tokenFile, 'utf8').trim()
    return new WebSocket(`ws://${this.endpoint.host}:${this.endpoint.port}${Routes.events.path}`, {
      perMessageDeflate: false, headers: {authorization: `Bearer ${token}`},
    })
  }
}

export type {StyxyEvent}
