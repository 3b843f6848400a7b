import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import Koa from 'koa'
import {Router} from '@koa/router'
import {DAEMON_HOST, resolvePaths, type StyxyPaths} from '../paths.js'
import {frontPath, VERSION} from '../project.js'
import {loadConfig} from '../config.js'
import {Store, storageFailure} from '../store/store.js'
import {Coordinator} from './coordinator.js'
import {EventHub} from './hub.js'
import {Metrics} from './metrics.js'
import {SocketTable} from './socket-table.js'
import {acquireDaemonLock, AlreadyRunningError, ensureToken, prepareStateDir} from './state-dir.js'
import {errors, localOnly, localOnlyRefusal, type Transport} from './middleware.js'
import {jsonBody} from './body.js'
import {rawAnswer} from './raw-answer.js'
import {socketAccepts} from '../client/socket-probe.js'
import {Routes} from '../protocol/routes.js'
import {mountHealth} from './routes/health.js'
import {mountAllocations} from './routes/allocations.js'
import {mountBind, serveBindFront, serveBindLane} from './routes/bind.js'
import {Front} from './front.js'
import {installBindLane, type BindLane, type LaneServe} from './bind-lane.js'
import {ExitWatches} from './exit-watches.js'
import {mountExitWatch, serveExitWatchLane} from './routes/exit-watch.js'
import {mountInstances} from './routes/instances.js'

export interface DaemonOptions {
  env?: NodeJS.ProcessEnv
  tcpPort: number
  reapIntervalMs?: number
  log?: (msg: string) => void
}

export interface RunningDaemon {
  paths: StyxyPaths
  tcpPort: number
  coordinator: Coordinator
  stop(reason?: string): Promise<void>
}

function envMs(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = Number(env[name])
  return env[name] !== undefined && Number.isFinite(v) && v >= 0 ? v : fallback
}

function listen(server: http.Server, target: {path: string} | {port: number; host: string}): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(target, () => { server.off('error', reject); resolve() })
  })
}

/** What to answer a request Node's parser refused before it reached the app (the same {"error"} shape). */
function clientErrorAnswer(err: NodeJS.ErrnoException): [number, string, string] {
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, 'HEADERS_TOO_LARGE', 'request headers too large (16 KB at most)']
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'REQUEST_TIMEOUT', 'the request did not arrive in time']
  return [400, 'BAD_REQUEST', `not a valid HTTP/1.1 request (${err.code ?? 'parse error'})`]
}

/** A log line on stderr; a log that cannot be written (a full disk under daemon.log) must not stop the daemon. */
export function logLine(msg: string): void {
  try {
    process.stderr.write(`[${new Date().toISOString()}] ${msg}\n`)
  } catch {
    // Nowhere left to say it.
  }
}

export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const env = options.env ?? process.env
  const log = options.log ?? logLine
  const paths = resolvePaths(env)
  // Everything the daemon creates (database, WAL, logs) is private to its user.
  process.umask(0o077)
  let lock
  try {
    prepareStateDir(paths)
    lock = acquireDaemonLock(paths.lock)
  } catch (error) {
    if (error instanceof AlreadyRunningError) {
      throw new AlreadyRunningError(`a Styxy daemon is already running for ${paths.stateDir} (socket ${paths.socket})`)
    }
    throw storageFailure(error, paths.lock) ?? error
  }
  const cleanups: (() => void)[] = [() => lock.close()]
  try {
    const config = loadConfig(paths.configFile)
    const store = new Store(paths.database)
    cleanups.unshift(() => store.close())
    let token: string
    try {
      token = ensureToken(paths.token)
    } catch (error) {
      throw storageFailure(error, paths.token) ?? error
    }
    const hub = new EventHub()
    const metrics = new Metrics()
    let tcpPort = options.tcpPort
    const coordinator = new Coordinator(store, config.serviceTypes, hub, new SocketTable(envMs(env, 'STYXY_SCAN_TTL_MS', 1000)), paths.audit, {
      daemonPort: options.tcpPort || 9876,
      minPort: envMs(env, 'STYXY_MIN_PORT', 1024),
      listenGraceMs: envMs(env, 'STYXY_LISTEN_GRACE_MS', 15_000),
      instanceTtlMs: envMs(env, 'STYXY_INSTANCE_TTL_MS', 60_000),
    }, metrics)
    // Leases whose holders died while we were down go first, before anyone is answered.
    const startup = await coordinator.reap()
    if (startup.released.length) log(`released ${startup.released.length} stale lease(s) at start-up`)

    const app = new Koa()
    app.proxy = false
    const router = new Router()
    const watches = new ExitWatches((req) => coordinator.releaseAfterRun(req))
    let front: Front | undefined
    const deps = {coordinator, hub, watches, metrics, paths, version: VERSION, startedAt: Date.now(), tcpPort: () => tcpPort, front: () => front?.status ?? null}
    for (const mount of [mountHealth, mountAllocations, mountBind, mountInstances, mountExitWatch]) mount(router, deps)
    const storage = (error: unknown) => storageFailure(error, paths.database)
    const [laneBind, laneWatch] = [serveBindLane(deps, log, storage), serveExitWatchLane(deps, log, storage)]
    const laneServe: LaneServe = (route, body, socket) => (route === 'bind' ? laneBind(body) : laneWatch(body, socket))
    app.use(errors(log, metrics, storage))
    app.use(localOnly(() => tcpPort, token))
    app.use(jsonBody(64 * 1024))
    app.use(router.routes())
    app.use(router.allowedMethods())
    app.on('error', () => {}) // already answered by the error middleware; client resets are not worth a log line
    const callback = app.callback()

    const lanes: BindLane[] = []
    const makeServer = (transport: Transport) => {
      // Timeouts are enforced when connections are checked: every 30 s by default, far too lax for the 5 s below.
      // A missing Host is ours to judge (refused on TCP with FORBIDDEN_HOST, irrelevant on the socket), not
      // Node's bare 400.
      const server = http.createServer({connectionsCheckingInterval: 1000, requireHostHeader: false}, (req, res) => {
        (req as {styxyTransport?: Transport}).styxyTransport = transport
        void callback(req, res)
      })
      // Slow or endless requests must not pin the daemon's memory or sockets.
      server.headersTimeout = 5_000
      server.requestTimeout = 10_000
      server.keepAliveTimeout = 5_000
      server.on('upgrade', (req, socket, head) => {
        socket.on('error', () => socket.destroy())
        // Compare the raw path: parsing a hostile URL (e.g. "//[") throws, and this runs before any auth.
        const refusal = (req.url ?? '/').split('?')[0] !== Routes.events.path
          ? {status: 404, code: 'NOT_FOUND', message: 'only /v1/events upgrades'}
          : localOnlyRefusal(req.headers, transport, tcpPort, token)
        if (refusal) {
          socket.end(rawAnswer(refusal.status, {error: {code: refusal.code, message: refusal.message}}))
          return
        }
        hub.upgrade(req, socket, head)
      })
      if (transport === 'unix') {
        const lane = installBindLane(server, laneServe, server.headersTimeout)
        if (lane) lanes.push(lane)
        else log('the bind lane is off: node:http is not as expected; the app answers every request')
      }
      server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
        if (!socket.writable) return socket.destroy()
        const [status, code, message] = clientErrorAnswer(err)
        socket.end(rawAnswer(status, {error: {code, message}}))
      })
      return server
    }

    let unixServer = makeServer('unix')
    if (fs.existsSync(paths.socket)) {
      if (await socketAccepts(paths.socket)) throw new AlreadyRunningError(`another daemon answers on ${paths.socket}`)
      fs.unlinkSync(paths.socket) // a crash's leftover: we hold the lock, so nobody else can be listening there
    }
    const listenUnix = async (server: http.Server) => {
      await listen(server, {path: paths.socket})
      fs.chmodSync(paths.socket, 0o600)
      return fs.statSync(paths.socket).ino
    }
    let socketIno = await listenUnix(unixServer)
    cleanups.unshift(() => { unixServer.close(); try { fs.unlinkSync(paths.socket) } catch { /* already gone */ } })
    // The socket file deleted (a tmp cleaner, a careless rm) or replaced by something that is not a live
    // socket: listen there again, so clients need not fall back to TCP until a restart. A live listener that
    // is not ours is left alone and reported.
    let healing = false
    let reportedForeign = false
    const healSocket = async () => {
      if (healing) return
      healing = true
      try {
        let ino: number | undefined
        try { ino = fs.statSync(paths.socket).ino } catch { ino = undefined }
        if (ino === socketIno) return
        if (ino !== undefined && await socketAccepts(paths.socket)) {
          if (!reportedForeign) log(`socket ${paths.socket} was replaced by another process's listener; clients use TCP until it goes`)
          reportedForeign = true
          return
        }
        log(`socket ${paths.socket} ${ino === undefined ? 'was deleted' : 'was replaced by a file that is not our socket'}: listening there again`)
        // Closing first: libuv unlinks a listening socket's path when it closes, which would take the new one.
        // Connections already accepted finish on their own.
        unixServer.close()
        fs.rmSync(paths.socket, {force: true})
        unixServer = makeServer('unix')
        socketIno = await listenUnix(unixServer)
        reportedForeign = false
      } catch (error) {
        log(`socket ${paths.socket}: cannot listen again (${(error as Error).message})`)
      } finally {
        healing = false
      }
    }
    const tcpServer = makeServer('tcp')
    await listen(tcpServer, {port: options.tcpPort, host: DAEMON_HOST})
    tcpPort = (tcpServer.address() as net.AddressInfo).port
    coordinator.reservePort(tcpPort)
    cleanups.unshift(() => tcpServer.close())

    const frontBinary = frontPath(env)
    if (frontBinary === null) {
      log('native front off (STYXY_FRONT=off): binds are answered on the daemon\'s socket')
    } else if (Buffer.byteLength(paths.frontSocket) > 107) {
      log(`native front off: its socket path would be too long for a Unix socket (${paths.frontSocket})`)
    } else {
      const started = new Front({binary: frontBinary, socket: paths.frontSocket, serve: serveBindFront(deps, log, storage), log, pingMs: envMs(env, 'STYXY_FRONT_PING_MS', 2000) || 2000})
      front = started
      cleanups.unshift(() => started.stop())
      await started.start()
    }

    // A checkpoint copies the WAL back with three fsyncs, on this thread: 5-60 ms here while binds stream in,
    // a slice of that second's decisions (~8% of decisions/s, A/B). So only a tick that answered nothing since
    // the previous one checkpoints; a burst without pause leaves it to SQLite's own bound (10,000 pages).
    let answeredAtTick = -1
    const reaper = setInterval(() => {
      coordinator.reap().catch((error: Error) => log(`reaper: ${error.message}`)).finally(() => {
        const answered = metrics.answered
        try {
          if (answered === answeredAtTick) store.checkpoint()
        } catch (error) {
          log(`checkpoint: ${(error as Error).message}`)
        }
        answeredAtTick = answered
      })
      void healSocket()
    }, options.reapIntervalMs ?? envMs(env, 'STYXY_REAP_INTERVAL_MS', 1000))
    cleanups.unshift(() => clearInterval(reaper))
    hub.publish({type: 'daemon.started', data: {pid: process.pid, version: VERSION}})
    log(`styxy ${VERSION} daemon pid ${process.pid} listening on ${paths.socket} and ${DAEMON_HOST}:${tcpPort}`)

    let stopping: Promise<void> | undefined
    return {
      paths, tcpPort, coordinator,
      stop(reason = 'stopped') {
        stopping ??= (async () => {
          hub.publish({type: 'daemon.stopping', data: {pid: process.pid, reason}})
          hub.close()
          watches.stop()
          unixServer.closeAllConnections()
          tcpServer.closeAllConnections()
          for (const lane of lanes) lane.closeAll()
          for (const c of cleanups) c()
          log(`daemon stopped (${reason})`)
        })()
        return stopping
      },
    }
  } catch (error) {
    for (const c of cleanups) c()
    throw error
  }
}
