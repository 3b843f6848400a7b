import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import Koa from 'koa'
import {Router} from '@koa/router'
import {DAEMON_HOST, resolvePaths, type StyxyPaths} from '../paths.js'
import {VERSION} from '../project.js'
import {loadConfig} from '../config.js'
import {Store} from '../store/store.js'
import {Coordinator} from './coordinator.js'
import {EventHub} from './hub.js'
import {Metrics} from './metrics.js'
import {SocketTable} from './socket-table.js'
import {acquireDaemonLock, AlreadyRunningError, ensureToken, prepareStateDir} from './state-dir.js'
import {errors, localOnly, localOnlyRefusal, type Transport} from './middleware.js'
import {jsonBody} from './body.js'
import {Routes} from '../protocol/routes.js'
import {mountHealth} from './routes/health.js'
import {mountAllocations} from './routes/allocations.js'
import {mountBind} from './routes/bind.js'
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

/** Is something answering on this socket path? Used to tell a live daemon's socket from a crash's leftover. */
function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

function listen(server: http.Server, target: {path: string} | {port: number; host: string}): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(target, () => { server.off('error', reject); resolve() })
  })
}

export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const env = options.env ?? process.env
  const log = options.log ?? ((msg: string) => process.stderr.write(`[${new Date().toISOString()}] ${msg}\n`))
  const paths = resolvePaths(env)
  // Everything the daemon creates (database, WAL, logs) is private to its user.
  process.umask(0o077)
  prepareStateDir(paths)
  let lock
  try {
    lock = acquireDaemonLock(paths.lock)
  } catch (error) {
    if (error instanceof AlreadyRunningError) {
      throw new AlreadyRunningError(`a Styxy daemon is already running for ${paths.stateDir} (socket ${paths.socket})`)
    }
    throw error
  }
  const cleanups: (() => void)[] = [() => lock.close()]
  try {
    const config = loadConfig(paths.configFile)
    const store = new Store(paths.database)
    cleanups.unshift(() => store.close())
    const token = ensureToken(paths.token)
    const hub = new EventHub()
    const metrics = new Metrics()
    let tcpPort = options.tcpPort
    const coordinator = new Coordinator(store, config.serviceTypes, hub, new SocketTable(envMs(env, 'STYXY_SCAN_TTL_MS', 250)), paths.audit, {
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
    const deps = {coordinator, hub, metrics, paths, version: VERSION, startedAt: Date.now(), tcpPort: () => tcpPort}
    for (const mount of [mountHealth, mountAllocations, mountBind, mountInstances]) mount(router, deps)
    app.use(errors(log, metrics))
    app.use(localOnly(() => tcpPort, token))
    app.use(jsonBody(64 * 1024))
    app.use(router.routes())
    app.use(router.allowedMethods())
    app.on('error', () => {}) // already answered by the error middleware; client resets are not worth a log line
    const callback = app.callback()

    const makeServer = (transport: Transport) => {
      const server = http.createServer((req, res) => {
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
          const body = JSON.stringify({error: {code: refusal.code, message: refusal.message}})
          socket.end(`HTTP/1.1 ${refusal.status} Refused\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
          return
        }
        hub.upgrade(req, socket, head)
      })
      server.on('clientError', (_err, socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
        else socket.destroy()
      })
      return server
    }

    const unixServer = makeServer('unix')
    if (fs.existsSync(paths.socket)) {
      if (await socketAnswers(paths.socket)) throw new AlreadyRunningError(`another daemon answers on ${paths.socket}`)
      fs.unlinkSync(paths.socket) // a crash's leftover: we hold the lock, so nobody else can be listening there
    }
    await listen(unixServer, {path: paths.socket})
    fs.chmodSync(paths.socket, 0o600)
    cleanups.unshift(() => { unixServer.close(); try { fs.unlinkSync(paths.socket) } catch { /* already gone */ } })
    const tcpServer = makeServer('tcp')
    await listen(tcpServer, {port: options.tcpPort, host: DAEMON_HOST})
    tcpPort = (tcpServer.address() as net.AddressInfo).port
    coordinator.reservePort(tcpPort)
    cleanups.unshift(() => tcpServer.close())

    const reaper = setInterval(() => {
      coordinator.reap().catch((error: Error) => log(`reaper: ${error.message}`)).finally(() => {
        try {
          store.checkpoint()
        } catch (error) {
          log(`checkpoint: ${(error as Error).message}`)
        }
      })
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
          unixServer.closeAllConnections()
          tcpServer.closeAllConnections()
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
