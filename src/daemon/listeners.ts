import fs from 'node:fs'
import http from 'node:http'
import type Koa from 'koa'
import {DashboardRoutes, Routes} from '../protocol/routes.js'
import {localOnlyRefusal, type Transport} from './middleware.js'
import {rawAnswer} from './raw-answer.js'
import type {EventHub} from './hub.js'
import {socketAccepts} from '../client/socket-probe.js'
import {AlreadyRunningError} from './state-dir.js'
import {dashboardRefusal} from './dashboard/access.js'
import type {DashboardSessions} from './dashboard/sessions.js'
import type {PeerCheck} from './dashboard/peer.js'

// The two listeners (Unix socket and TCP on loopback) serve one Koa app and one WebSocket hub.

export interface ServeDeps {
  app: Koa
  hub: EventHub
  token: string
  tcpPort: () => number
  dashboard: DashboardSessions
  dashboardPeer: PeerCheck
}

export function listen(server: http.Server, target: {path: string} | {port: number; host: string} | {fd: number}): Promise<void> {
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

/** One HTTP server for one transport: every request tagged with it, upgrades judged by the same rules as requests. */
export function makeServer(transport: Transport, {app, hub, token, tcpPort, dashboard, dashboardPeer}: ServeDeps): http.Server {
  const callback = app.callback()
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
    // Two ways in, each with its own rule: the API's (token, no Origin) and the dashboard page's (its cookie and Origin).
    const path = (req.url ?? '/').split('?')[0]
    const refusal = path === Routes.events.path ? localOnlyRefusal(req.headers, transport, tcpPort(), token)
      : path === DashboardRoutes.events.path ? dashboardRefusal(req, transport, tcpPort(), dashboard, dashboardPeer)
        : {status: 404, code: 'NOT_FOUND', message: `only ${Routes.events.path} and ${DashboardRoutes.events.path} upgrade`}
    if (refusal) {
      socket.end(rawAnswer(refusal.status, {error: {code: refusal.code, message: refusal.message}}))
      return
    }
    hub.upgrade(req, socket, head)
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy()
    const [status, code, message] = clientErrorAnswer(err)
    socket.end(rawAnswer(status, {error: {code, message}}))
  })
  return server
}

/**
 * The Unix socket, private to its user, and kept there: deleted (a tmp cleaner, a careless rm) or replaced by
 * something that is not a live socket, it is listened on again, so clients need not fall back to TCP until a
 * restart. A live listener that is not ours is left alone and reported.
 */
export class UnixListener {
  private server: http.Server
  private ino = 0
  private healing = false
  private reportedForeign = false

  private constructor(
    private readonly file: string, private readonly make: () => http.Server, private readonly log: (msg: string) => void,
    /** Passed to us by a supervisor (socket activation): its file is the supervisor's, never unlinked or replaced. */
    private readonly inherited = false,
  ) {
    this.server = make()
  }

  /** The socket a supervisor made and passed on fd `fd`. */
  static async adopt(file: string, fd: number, make: () => http.Server, log: (msg: string) => void): Promise<UnixListener> {
    const l = new UnixListener(file, make, log, true)
    await listen(l.server, {fd})
    // A Unix socket opened from an fd has no address Node will tell (null); a TCP one would have {address, port}.
    if (typeof l.server.address() === 'object' && l.server.address() !== null) {
      l.server.close()
      throw new Error(`fd ${fd} was taken for the Unix socket ${file} but is not one`)
    }
    return l
  }

  static async open(file: string, make: () => http.Server, log: (msg: string) => void): Promise<UnixListener> {
    if (fs.existsSync(file)) {
      if (await socketAccepts(file)) throw new AlreadyRunningError(`another daemon answers on ${file}`)
      fs.unlinkSync(file) // a crash's leftover: we hold the lock, so nobody else can be listening there
    }
    const l = new UnixListener(file, make, log)
    await l.listen()
    return l
  }

  private async listen(): Promise<void> {
    await listen(this.server, {path: this.file})
    fs.chmodSync(this.file, 0o600)
    this.ino = fs.statSync(this.file).ino
  }

  async heal(): Promise<void> {
    // The supervisor owns an inherited socket's file: it outlives us, and its socket unit says what to do with it.
    if (this.healing || this.inherited) return
    this.healing = true
    try {
      let ino: number | undefined
      try { ino = fs.statSync(this.file).ino } catch { ino = undefined }
      if (ino === this.ino) return
      if (ino !== undefined && await socketAccepts(this.file)) {
        if (!this.reportedForeign) this.log(`socket ${this.file} was replaced by another process's listener; clients use TCP until it goes`)
        this.reportedForeign = true
        return
      }
      this.log(`socket ${this.file} ${ino === undefined ? 'was deleted' : 'was replaced by a file that is not our socket'}: listening there again`)
      // Closing first: libuv unlinks a listening socket's path when it closes, which would take the new one.
      // Connections already accepted finish on their own.
      this.server.close()
      fs.rmSync(this.file, {force: true})
      this.server = this.make()
      await this.listen()
      this.reportedForeign = false
    } catch (error) {
      this.log(`socket ${this.file}: cannot listen again (${(error as Error).message})`)
    } finally {
      this.healing = false
    }
  }

  close(): void {
    this.server.closeAllConnections()
    this.server.close()
    // An inherited socket stays: the supervisor's next daemon is started on it, and connections wait there meanwhile.
    if (this.inherited) return
    try { fs.unlinkSync(this.file) } catch { /* already gone */ }
  }
}
