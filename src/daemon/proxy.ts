import http from 'node:http'
import net from 'node:net'
import type {Duplex} from 'node:stream'
import {createProxyServer} from 'http-proxy-3'
import {nameFromHost, urlOf} from '../core/names.js'
import type {RawListener} from '../shared/proc-net.js'
import type {LiveNames} from './names.js'

// The names proxy: `http://NAME.localhost:<proxy port>/` forwards to the port the server named NAME holds now,
// read from the lease table at each request (so it follows moves and restarts). Its own listener, not the API's:
// the API keeps its token rule and its 5-10 s limits against slow clients, while a proxied HMR WebSocket or a
// streamed body lives for hours. No token here: it reaches the user's own dev servers, no more than they are
// reachable already, and it never answers the daemon's API (nothing here routes to it).

export interface ProxyDeps {
  names: LiveNames
  /** Who listens on a port, asked of the kernel now. */
  listenersOn: (port: number) => RawListener[]
  /** The daemon's own ports (API and proxy): never a target, whatever a lease says. */
  ownPorts: () => number[]
  proxyPort: () => number
  log: (msg: string) => void
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** A short page: people meet these in a browser, scripts read the status. */
function page(status: number, title: string, text: string, names: string[] = [], port?: number): {status: number; body: string} {
  const list = names.length
    ? `<ul>${names.map((n) => `<li><a href="${escapeHtml(urlOf(n, port ?? 0) ?? '#')}">${escapeHtml(n)}</a></li>`).join('')}</ul>`
    : ''
  const body = `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>${list}\n`
  return {status, body}
}

type Route = {target: string} | {status: number; body: string}

/** Where a request goes (by the lease table only), or the page that says why it goes nowhere. */
export function route(host: string | undefined, d: ProxyDeps): Route {
  const name = nameFromHost(host)
  const port = d.proxyPort()
  if (name === null) {
    return page(421, 'Not a *.localhost name', `This is Styxy's names proxy: it serves http://NAME.localhost:${port}/ only, not the host "${host ?? ''}".`)
  }
  const lease = name === '' ? undefined : d.names.lease(name)
  if (!lease) {
    // The names there are: only for the page that lists them, not on every forwarded request.
    const known = d.names.names()
    const listing = known.length ? 'Servers with a name now:' : 'No server has a name now: start one with styxy run.'
    if (name === '') return page(404, 'Styxy names', listing, known, port)
    return page(404, `No server named ${name}`, `No live server of this Styxy is named "${name}". ${listing}`, known, port)
  }
  if (d.ownPorts().includes(lease.port)) return page(502, `${name} is not served here`, `Port ${lease.port} is Styxy's own.`)
  // `localhost`: the agent below picks the family from the kernel when it connects.
  return {target: `http://localhost:${lease.port}`}
}

/** Refused by the kernel check at connect time: the proxy's error handler turns it into a 502 page. */
class NotOurListener extends Error {}

/**
 * Which loopback address of `port` a listener of this user holds, asked of the kernel; null when none does.
 * Only a listener of this user: a stranger's process on a port our lease has not bound yet is not our server.
 * The address is the listener's own: ours on 127.0.0.2 and a stranger's on 127.0.0.1 share the port number.
 */
function ourListener(port: number, d: ProxyDeps): string | null {
  const uid = process.geteuid?.()
  const mine = d.listenersOn(port).filter((l) => uid === undefined || l.uid === uid)
  const v4 = mine.filter((l) => l.family === 'ipv4' && (l.address === '0.0.0.0' || l.address.startsWith('127.')))
  if (v4.length) return v4.some((l) => l.address === '0.0.0.0' || l.address === '127.0.0.1') ? '127.0.0.1' : v4[0].address
  if (mine.some((l) => l.family === 'ipv6' && (l.address === '::' || l.address === '::1'))) return '::1'
  return null
}

/**
 * Connections to the servers are kept alive (a new one per request doubled the proxy's cost), and the kernel is
 * asked who listens when a connection is made, not at every request: a kept connection was made to the listener
 * that was checked, and stays with that process. Asking per request cost ~0.2 ms of each (bench/proxy.ts).
 */
class CheckingAgent extends http.Agent {
  constructor(private readonly d: ProxyDeps) {
    super({keepAlive: true})
  }

  override createConnection(options: http.ClientRequestArgs): Duplex {
    const port = Number(options.port)
    const host = ourListener(port, this.d)
    if (host === null) {
      // Failed as a refused connect would fail, later in this turn: the request's error listeners are there by then.
      const refused = new net.Socket()
      process.nextTick(() => refused.destroy(new NotOurListener(`nothing of yours listens on loopback port ${port} now (starting, or stopped)`)))
      return refused
    }
    return net.createConnection({...(options as net.TcpNetConnectOpts), host})
  }
}

// A client can send these itself: the app must read the proxy's word on who asked, not the client's.
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto', 'x-real-ip']

function dropForwarding(req: http.IncomingMessage): void {
  for (const h of FORWARDING_HEADERS) delete req.headers[h]
}

/** What a client may send before its upgrade is answered (it should send nothing): more is not a WebSocket client. */
const EARLY_BYTES = 64 * 1024

/**
 * http-proxy-3 reads nothing from the client's socket until the server answers its upgrade, so a client that went
 * away was never noticed: a request the server never answers (Vite never answers one that is not its HMR's), or
 * an answer that streams forever, kept two of the daemon's fds for good, and a page in any browser tab could
 * pile them up. The socket is read meanwhile; what came early is handed back for the tunnel, and the client's
 * going ends the server's side too. What the server answered is remembered: after a 101 or a status line has
 * gone to the client, an error can only close its socket, never write a second answer into the stream.
 */
function watchUpgrade(proxyReq: http.ClientRequest, socket: Duplex, answered: WeakSet<Duplex>): void {
  let upstream: Duplex | undefined
  const early: Buffer[] = []
  let earlyBytes = 0
  const hold = (chunk: Buffer) => {
    earlyBytes += chunk.length
    if (earlyBytes > EARLY_BYTES) socket.destroy()
    else early.push(chunk)
  }
  const gone = () => {
    proxyReq.destroy()
    upstream?.destroy()
  }
  socket.on('data', hold)
  socket.once('end', gone)
  socket.once('close', gone)
  // Ours runs before http-proxy-3's own listener (added after this event): the tunnel's pipe gets the early bytes.
  proxyReq.once('upgrade', (_res, s: Duplex) => {
    upstream = s
    answered.add(socket)
    socket.off('data', hold)
    socket.off('end', gone) // a half-close is the tunnel's business now
    socket.pause()
    if (early.length) socket.unshift(Buffer.concat(early))
  })
  proxyReq.once('response', () => {
    answered.add(socket)
    early.length = 0
    socket.off('data', hold)
    socket.on('data', () => {}) // read on, to notice the client leaving; nothing it sends now means anything
  })
}

/** The proxy's HTTP server: every request and upgrade routed by its Host, each lookup made at that moment. */
export function makeProxyServer(d: ProxyDeps): http.Server {
  // xfwd: the app sees the real client in X-Forwarded-For and the name it was asked by in X-Forwarded-Host.
  // The Host header is passed on unchanged: Vite (and others) accept *.localhost hosts by default. A kept
  // connection is only reused for the port a request's own lookup chose (the agent's pool is by host and port).
  const proxy = createProxyServer({xfwd: true, ws: true, agent: new CheckingAgent(d)})
  const answered = new WeakSet<Duplex>()
  proxy.on('proxyReqWs', (proxyReq, _req, socket) => watchUpgrade(proxyReq, socket, answered))
  proxy.on('error', (err, req, res) => {
    const why = (err as NodeJS.ErrnoException).code ?? err.message
    const p = err instanceof NotOurListener
      ? page(502, `${nameFromHost(req.headers.host)} is not listening`, `Its port is leased, but ${err.message}.`)
      : page(502, 'The server did not answer', `Forwarding failed (${why}).`)
    if (res instanceof http.ServerResponse) {
      if (!res.headersSent) answer(res, p)
      else res.destroy()
    } else if (answered.has(res as Duplex)) {
      (res as Duplex).destroy()
    } else {
      refuseUpgrade(res as Duplex, p)
    }
  })
  // Long-lived by design (see above): no request timeout for streamed bodies; headers still have to arrive.
  const server = http.createServer({requestTimeout: 0, headersTimeout: 30_000}, (req, res) => {
    const r = route(req.headers.host, d)
    if (!('target' in r)) return answer(res, r)
    dropForwarding(req)
    proxy.web(req, res, {target: r.target})
  })
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    const r = route(req.headers.host, d)
    if (!('target' in r)) return refuseUpgrade(socket, r)
    dropForwarding(req)
    proxy.ws(req, socket, head, {target: r.target})
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  return server
}

function answer(res: http.ServerResponse, p: {status: number; body: string}): void {
  res.writeHead(p.status, {'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(p.body), 'cache-control': 'no-store'})
  res.end(p.body)
}

/** An upgrade that goes nowhere still gets a status line, as a refused request gets its page. */
function refuseUpgrade(socket: Duplex, p: {status: number; body: string}): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy()
  socket.end(`HTTP/1.1 ${p.status} ${http.STATUS_CODES[p.status] ?? 'Error'}\r\nContent-Type: text/html; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(p.body)}\r\nConnection: close\r\n\r\n${p.body}`)
}
