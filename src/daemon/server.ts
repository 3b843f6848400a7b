import Koa from 'koa'
import {Router} from '@koa/router'
import {DAEMON_HOST, proxyPort, resolvePaths, type StyxyPaths} from '../paths.js'
import {VERSION} from '../project.js'
import {loadConfig} from '../config.js'
import {setLeaseUrls, Store, storageFailure} from '../store/store.js'
import {urlOf} from '../core/names.js'
import {makeProxyServer} from './proxy.js'
import {Coordinator} from './coordinator.js'
import {EventHub} from './hub.js'
import {Metrics} from './metrics.js'
import {openKernel} from '../kernel/open.js'
import {acquireDaemonLock, AlreadyRunningError, ensureToken, prepareStateDir} from './state-dir.js'
import {errors, localOnly} from './middleware.js'
import {jsonBody} from './body.js'
import {ExitWatches} from './exit-watches.js'
import {makeServer, UnixListener} from './listeners.js'
import {TcpListener, type TcpState} from './tcp-listener.js'
import type {Inherited} from './activation.js'
import {mountHealth} from './routes/health.js'
import {mountAllocations} from './routes/allocations.js'
import {mountBind} from './routes/bind.js'
import {mountInstances} from './routes/instances.js'
import {mountExitWatch} from './routes/exit-watch.js'
import {mountLegacy} from './routes/legacy.js'
import {mountConfig} from './routes/config.js'
import {ConfigReloader} from './config-reload.js'
import {refreshTokenCopy} from '../compat.js'
import type {RouteDeps} from './routes/deps.js'
import {FollowTable} from './follow-table.js'
import {mountDashboard} from './routes/dashboard.js'
import {DashboardSessions} from './dashboard/sessions.js'
import {dashboardMiddleware} from './dashboard/app.js'
import {peerCheck} from './dashboard/peer.js'

export interface DaemonOptions {
  env?: NodeJS.ProcessEnv
  tcpPort: number
  /** Listeners passed by a supervisor (socket activation, activation.ts): used instead of making our own. */
  inherited?: Inherited[]
  reapIntervalMs?: number
  log?: (msg: string) => void
}

export interface RunningDaemon {
  paths: StyxyPaths
  /** The TCP port: the one listened on, or while TCP is off (its port taken) the one being tried. */
  tcpPort: number
  tcp: () => TcpState
  /** The names proxy's listener; null when it is off. */
  proxy: () => TcpState | null
  coordinator: Coordinator
  config: ConfigReloader
  stop(reason?: string): Promise<void>
}

function envMs(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = Number(env[name])
  return env[name] !== undefined && Number.isFinite(v) && v >= 0 ? v : fallback
}

/** A log line on stderr; a log that cannot be written (a full disk under daemon.log) must not stop the daemon. */
export function logLine(msg: string): void {
  try {
    process.stderr.write(`[${new Date().toISOString()}] ${msg}\n`)
  } catch {
    // Nowhere left to say it.
  }
}

/** Undo in reverse order of doing: each step registers how to take itself down. */
class Teardown {
  private readonly steps: (() => void)[] = []
  add(step: () => void): void {
    this.steps.unshift(step)
  }
  run(): void {
    for (const s of this.steps) s()
  }
}

/** Step 1: the state directory, its lock (one daemon per directory), the store and the token. */
function openState(paths: StyxyPaths, teardown: Teardown, env: NodeJS.ProcessEnv, log: (msg: string) => void): {store: Store; token: string} {
  // Everything the daemon creates (database, WAL, logs) is private to its user.
  process.umask(0o077)
  try {
    if (prepareStateDir(paths)) log(`state directory ${paths.stateDir} was open to other users (an older Styxy's 0755): now 0700`)
    const lock = acquireDaemonLock(paths.lock)
    teardown.add(() => lock.close())
  } catch (error) {
    if (error instanceof AlreadyRunningError) {
      throw new AlreadyRunningError(`a Styxy daemon is already running for ${paths.stateDir} (socket ${paths.socket})`)
    }
    throw storageFailure(error, paths.lock) ?? error
  }
  const store = new Store(paths.database)
  teardown.add(() => store.close())
  let token: string
  try {
    token = ensureToken(paths.token)
  } catch (error) {
    throw storageFailure(error, paths.token) ?? error
  }
  // `styxy compat on`: the first Styxy's clients read ~/.styxy/auth.token; it follows the token (src/compat.ts).
  const compat = refreshTokenCopy(paths, token, env)
  if (compat) log(compat)
  return {store, token}
}

function openFollowTable(file: string, store: Store, hub: EventHub, log: (msg: string) => void): FollowTable {
  let table: FollowTable
  try {
    table = FollowTable.open(file, {
      movedLeases: () => store.movedLeases().map((r) => ({project: r.project, requestedPort: r.requested_port, port: r.port})),
      projectOn: (port) => store.leaseByPort(port)?.project,
    }, log)
  } catch (error) {
    throw storageFailure(error, file) ?? error
  }
  hub.observe((e) => {
    if (e.type === 'lease.created' || e.type === 'lease.released') table.leaseChanged(e.data)
  })
  return table
}

/** Step 2: the one app, the same middleware and routes whichever listener a request came in on. */
function buildApp(deps: RouteDeps, token: string, log: (msg: string) => void): Koa {
  const app = new Koa()
  app.proxy = false
  const router = new Router()
  for (const mount of [mountHealth, mountConfig, mountAllocations, mountBind, mountInstances, mountExitWatch, mountDashboard, mountLegacy]) mount(router, deps)
  app.use(errors(log, deps.metrics, (error) => storageFailure(error, deps.paths.database)))
  // /dashboard is judged by its own rule (a session cookie and its own Origin) and ends there; the rest goes on.
  app.use(dashboardMiddleware({coordinator: deps.coordinator, sessions: deps.dashboard, peer: deps.dashboardPeer, tcpPort: deps.tcpPort, log}))
  app.use(localOnly(deps.tcpPort, token))
  app.use(jsonBody(64 * 1024))
  app.use(router.routes())
  app.use(router.allowedMethods())
  app.on('error', () => {}) // already answered by the error middleware; client resets are not worth a log line
  return app
}

/**
 * Step 4: the reaper. A checkpoint copies the WAL back with three fsyncs on this thread, so only a tick that
 * answered nothing since the previous one checkpoints; a burst leaves it to SQLite's own bound (10,000 pages).
 */
function startHousekeeping(coordinator: Coordinator, store: Store, metrics: Metrics, unix: UnixListener, intervalMs: number, log: (msg: string) => void): () => void {
  let answeredAtTick = -1
  const timer = setInterval(() => {
    try {
      coordinator.releases.reap()
    } catch (error) {
      log(`reaper: ${(error as Error).message}`)
    }
    const answered = metrics.answered
    try {
      if (answered === answeredAtTick) store.checkpoint()
    } catch (error) {
      log(`checkpoint: ${(error as Error).message}`)
    }
    answeredAtTick = answered
    void unix.heal()
  }, intervalMs)
  return () => clearInterval(timer)
}

/** The names proxy (proxy.ts) on its own loopback port, off and retried while taken, like the TCP listener. */
async function openProxy(coordinator: Coordinator, port: number, ownPorts: () => number[], env: NodeJS.ProcessEnv, log: (msg: string) => void): Promise<TcpListener> {
  // Reserved as configured: a server asking for the proxy's port is moved off it, whether the proxy holds it yet or not.
  if (port) coordinator.reservePort(port)
  let bound = port
  // A lease has the URL its name leads to (port 0: none until the kernel has picked the proxy's port).
  setLeaseUrls((r) => (bound && coordinator.names.holds(r) ? urlOf(r.name, bound) : null))
  return TcpListener.open({
    host: DAEMON_HOST, port, log, label: 'names proxy', whileOff: 'servers have no *.localhost URL until it listens',
    maxRetryMs: envMs(env, 'STYXY_TCP_RETRY_MAX_MS', 30_000) || undefined,
    make: () => makeProxyServer({names: coordinator.names, listenersOn: (p) => coordinator.kernel.listenersOn(p), ownPorts, proxyPort: () => bound, log}),
    onListening: (p) => { bound = p; coordinator.reservePort(p) },
  })
}

export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const env = options.env ?? process.env
  const log = options.log ?? logLine
  const paths = resolvePaths(env)
  const teardown = new Teardown()
  try {
    const {store, token} = openState(paths, teardown, env, log)
    const config = loadConfig(paths.configFile)
    const hub = new EventHub()
    const metrics = new Metrics()
    let tcpPort = options.tcpPort
    let coordinator: Coordinator | undefined
    const kernel = openKernel(env, (pids) => {
      for (const pid of pids) {
        try {
          coordinator?.releases.holderExited(pid)
        } catch (error) {
          log(`holder ${pid} exited: ${(error as Error).message}`)
        }
      }
    })
    if (kernel.tables.reason) log(`kernel: reading /proc/net/tcp (${kernel.tables.reason})`)
    if (kernel.exits.reason) log(`holder exits: found by the reaper's rounds (${kernel.exits.reason})`)
    coordinator = new Coordinator(store, config.serviceTypes, hub, kernel.tables, paths.audit, {
      daemonPort: options.tcpPort || 9876,
      minPort: envMs(env, 'STYXY_MIN_PORT', 1024),
      listenGraceMs: envMs(env, 'STYXY_LISTEN_GRACE_MS', 15_000),
      instanceTtlMs: envMs(env, 'STYXY_INSTANCE_TTL_MS', 60_000),
    }, metrics, kernel.exits)
    // Leases whose holders died while we were down go first, before anyone is answered; the rest are watched.
    const startup = coordinator.releases.reap()
    if (startup.released.length) log(`released ${startup.released.length} stale lease(s) at start-up`)
    coordinator.releases.watchAll()
    // The moves are published from the leases that survived, then kept current by every lease made or ended.
    const follow = openFollowTable(paths.follow, store, hub, log)
    teardown.add(() => follow.close())

    const reloader = new ConfigReloader(paths.configFile, (types) => coordinator.setServiceTypes(types), hub, log, config.serviceTypes)
    reloader.watch()
    teardown.add(() => reloader.close())

    const watches = new ExitWatches((req) => coordinator.releases.releaseAfterRun(req))
    let tcp: TcpListener | undefined
    const tcpState = (): TcpState => tcp?.state ?? {port: tcpPort, listening: false, error: 'not opened yet', retryMs: null}
    const dashboard = new DashboardSessions()
    const dashboardPeer = peerCheck(kernel.tables)
    let proxy: TcpListener | undefined
    const wantedProxyPort = proxyPort(env, options.tcpPort)
    const proxyState = (): TcpState | null => wantedProxyPort === null ? null : proxy?.state ?? {port: wantedProxyPort, listening: false, error: 'not opened yet', retryMs: null}
    const deps: RouteDeps = {coordinator, hub, watches, metrics, paths, version: VERSION, startedAt: Date.now(), tcpPort: () => tcpPort, tcp: tcpState, proxy: proxyState, config: reloader, dashboard, dashboardPeer}
    const app = buildApp(deps, token, log)

    // Step 3: both listeners, one app.
    const serve = {app, hub, token, tcpPort: () => tcpPort, dashboard, dashboardPeer}
    const given = {unix: options.inherited?.find((l) => l.kind === 'unix'), tcp: options.inherited?.find((l) => l.kind === 'tcp')}
    const makeUnix = () => makeServer('unix', serve)
    if (given.unix && given.unix.path !== paths.socket) {
      log(`the supervisor's socket ${given.unix.path} is not ${paths.socket} (STYXY_HOME/STYXY_SOCKET): clients that look there will not find this daemon`)
    }
    const unix = given.unix ? await UnixListener.adopt(given.unix.path, given.unix.fd, makeUnix, log) : await UnixListener.open(paths.socket, makeUnix, log)
    teardown.add(() => unix.close())
    // The configured port is never handed out, whether or not we hold it yet.
    if (options.tcpPort) coordinator.reservePort(options.tcpPort)
    const tcpOptions = {
      host: DAEMON_HOST, port: options.tcpPort, make: () => makeServer('tcp', serve), log,
      maxRetryMs: envMs(env, 'STYXY_TCP_RETRY_MAX_MS', 30_000) || undefined,
      onListening: (port: number) => { tcpPort = port; coordinator.reservePort(port) },
    }
    tcp = given.tcp ? await TcpListener.adopt(tcpOptions, given.tcp.fd) : await TcpListener.open(tcpOptions)
    if (given.unix || given.tcp) log(`listeners from the supervisor: ${[given.unix && `Unix socket ${given.unix.path} (fd ${given.unix.fd})`, given.tcp && `TCP ${DAEMON_HOST}:${tcpPort} (fd ${given.tcp.fd})`].filter(Boolean).join(', ')}`)
    const tcpListener = tcp
    teardown.add(() => tcpListener.close())
    if (wantedProxyPort !== null) {
      proxy = await openProxy(coordinator, wantedProxyPort, () => [tcpPort, proxyState()?.port ?? 0], env, log)
      const proxyListener = proxy
      teardown.add(() => proxyListener.close())
    }

    // With exit events the reaper only expires what has no event (heartbeats, leases without a listener), so it
    // can take its time; without them it is how the dead are found.
    const reapDefault = kernel.exits.name === 'pidfd' ? 5000 : 1000
    teardown.add(startHousekeeping(coordinator, store, metrics, unix, options.reapIntervalMs ?? envMs(env, 'STYXY_REAP_INTERVAL_MS', reapDefault), log))
    hub.publish({type: 'daemon.started', data: {pid: process.pid, version: VERSION}})
    log(`styxy ${VERSION} daemon pid ${process.pid} listening on ${given.unix?.path ?? paths.socket}${tcp.state.listening ? ` and ${DAEMON_HOST}:${tcpPort}` : ` (TCP ${DAEMON_HOST}:${tcpPort} off: ${tcp.state.error})`}`)
    try {
      for (const l of coordinator.adoptStrays(paths.stateDir)) log(`leased ${l.port} to pid ${l.pid} (${l.command ?? '?'}): it moved there by itself while the daemon was unreachable`)
    } catch (error) {
      log(`strays: ${(error as Error).message}`)
    }

    let stopping: Promise<void> | undefined
    return {
      paths, tcpPort, coordinator, tcp: tcpState, proxy: proxyState, config: reloader,
      stop(reason = 'stopped') {
        stopping ??= (async () => {
          hub.publish({type: 'daemon.stopping', data: {pid: process.pid, reason}})
          hub.close()
          watches.stop()
          teardown.run()
          log(`daemon stopped (${reason})`)
        })()
        return stopping
      },
    }
  } catch (error) {
    teardown.run()
    throw error
  }
}
