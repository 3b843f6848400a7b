// The whole API as one table. The daemon mounts exactly these; the client builds URLs only from here;
// docs/api.md is checked against it by a test.
export const Routes = {
  health: {method: 'GET', path: '/v1/health', summary: 'Version and pid: the liveness probe'},
  status: {method: 'GET', path: '/v1/status', summary: 'Counts, uptime and paths'},
  serviceTypes: {method: 'GET', path: '/v1/service-types', summary: 'The merged service types'},
  reloadConfig: {method: 'POST', path: '/v1/config/reload', summary: 'Read the config file again; a file that does not validate is refused and the old types stay'},
  allocate: {method: 'POST', path: '/v1/allocations', summary: 'Lease a port before anything binds it'},
  allocations: {method: 'GET', path: '/v1/allocations', summary: 'Every active lease'},
  release: {method: 'DELETE', path: '/v1/allocations/:id', summary: 'Release a lease'},
  port: {method: 'GET', path: '/v1/ports/:port', summary: 'Whether a port is bound and/or leased, and by whom'},
  scan: {method: 'GET', path: '/v1/ports', summary: 'Ports in use (bound or leased) between start and end'},
  suggest: {method: 'GET', path: '/v1/suggest/:service', summary: 'Free ports of a type (count=N)'},
  bind: {method: 'POST', path: '/v1/bind', summary: "The interceptor's one round trip: allow, remap or deny"},
  follow: {method: 'POST', path: '/v1/follows', summary: "The interceptor's word that a process followed a moved port (once per process and port): a connect.followed event"},
  registerInstance: {method: 'POST', path: '/v1/instances', summary: 'Register an instance (a pid alone is enough)'},
  heartbeat: {method: 'POST', path: '/v1/instances/:id/heartbeat', summary: 'Keep an instance alive'},
  instances: {method: 'GET', path: '/v1/instances', summary: 'Registered instances'},
  removeInstance: {method: 'DELETE', path: '/v1/instances/:id', summary: 'Remove an instance and release its leases'},
  reassignments: {method: 'GET', path: '/v1/reassignments', summary: 'The audit trail of moves (since=ISO time)'},
  exitWatch: {method: 'POST', path: '/v1/exit-watch', summary: 'Held open by `styxy run`: when its connection ends, release the command\'s leases (if it has exited) and the run\'s own'},
  cleanup: {method: 'POST', path: '/v1/cleanup', summary: 'Release what is stale now (force=1: also what is not listening; pid=N: only that exited process)'},
  metrics: {method: 'GET', path: '/v1/metrics', summary: 'Prometheus text: leases, binds, latency, events'},
  events: {method: 'GET', path: '/v1/events', summary: 'WebSocket upgrade: every event as JSON'},
  dashboardLogin: {method: 'POST', path: '/v1/dashboard/logins', summary: 'A one-time login link to the dashboard (single use, 60 s); refused while the TCP listener is off'},
} as const

export type RouteName = keyof typeof Routes

// The first Styxy's routes, for its clients only (a C bind() shim, agent hooks, scripts): their paths, their
// snake_case shapes and their {"success":false,"error"} errors, served with this daemon's semantics. Nothing
// new speaks them; docs/api.md documents them as compatibility only.
export const LegacyRoutes = {
  observe: {method: 'GET', path: '/observe/:port', summary: 'Whether a port is bound, and by whom'},
  suggest: {method: 'GET', path: '/suggest/:serviceType', summary: 'Free ports of a type (count=N; unknown types fall back to dev)'},
  registerShim: {method: 'POST', path: '/register-instance', summary: "The shim's registration: a pid alone makes ldpreload-<pid>"},
  status: {method: 'GET', path: '/status', summary: 'Counts and uptime; the one route that needs no token'},
  allocate: {method: 'POST', path: '/allocate', summary: 'Lease a port; the lock id is the lease id (a uuid v4)'},
  release: {method: 'DELETE', path: '/allocate/:lockId', summary: 'Release a lease by its lock id'},
  check: {method: 'GET', path: '/check/:port', summary: 'Whether a port is free: its lease and its listener'},
  allocations: {method: 'GET', path: '/allocations', summary: 'Every active lease'},
  config: {method: 'GET', path: '/config', summary: 'The service types'},
  registerInstance: {method: 'POST', path: '/instance/register', summary: 'Register an instance by id'},
  heartbeat: {method: 'PUT', path: '/instance/:id/heartbeat', summary: 'Keep an instance alive'},
  instances: {method: 'GET', path: '/instance/list', summary: 'Registered instances and their leases'},
  cleanup: {method: 'POST', path: '/cleanup', summary: 'Release what is stale now (force: also what is not listening)'},
  scan: {method: 'GET', path: '/scan', summary: 'Ports in use between start and end'},
  health: {method: 'GET', path: '/health', summary: 'healthy, warning or degraded (503)'},
} as const

export type LegacyRouteName = keyof typeof LegacyRoutes

// The dashboard's routes: for the browser page only, on the TCP listener, with a session cookie instead of the
// token (src/daemon/dashboard/access.ts). Nothing under /v1 ever takes the cookie; nothing here takes the token.
export const DASHBOARD_PREFIX = '/dashboard'
export const DashboardRoutes = {
  login: {method: 'GET', path: '/dashboard/login', summary: 'Trade a one-time code (?code=) for a session cookie, then go to the page (303)'},
  page: {method: 'GET', path: '/dashboard/', summary: 'The page; its script and style sheet beside it (app.js, style.css)'},
  servers: {method: 'GET', path: '/dashboard/api/servers', summary: 'Every lease as a server, by project, with whether it listens now'},
  release: {method: 'DELETE', path: '/dashboard/api/leases/:id', summary: 'Release a lease'},
  stop: {method: 'POST', path: '/dashboard/api/stops', summary: 'SIGTERM to a live lease holder\'s process group ({"pid"}), SIGKILL after 5 s'},
  events: {method: 'GET', path: '/dashboard/api/events', summary: 'WebSocket upgrade: every event as JSON, as on /v1/events'},
} as const

/** Whether a request path is the dashboard's (its own access rule), compared on the raw path: /dashboardx is not. */
export function isDashboardPath(path: string): boolean {
  return path === DASHBOARD_PREFIX || path.startsWith(`${DASHBOARD_PREFIX}/`)
}

const legacyPatterns = Object.values(LegacyRoutes).map((r) => new RegExp(`^${r.path.replace(/:\w+/g, '[^/]+')}/?$`))

/** Whether a request path belongs to the legacy group (its errors take the first API's shape). */
export function isLegacyPath(path: string): boolean {
  return legacyPatterns.some((re) => re.test(path))
}

/** Fill `:param` placeholders; values are URI-encoded. */
export function routePath(name: RouteName, params: Record<string, string | number> = {}): string {
  return Routes[name].path.replace(/:(\w+)/g, (_m, key: string) => {
    const v = params[key]
    if (v === undefined) throw new Error(`missing route parameter ${key} for ${name}`)
    return encodeURIComponent(String(v))
  })
}
