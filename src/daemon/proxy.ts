import http from 'node:http'
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

/** Where a request goes, or the page that says why it goes nowhere. */
export function route(host: string | undefined, d: ProxyDeps): Route {
  const name = nameFromHost(host)
  const port = d.proxyPort()
  if (name === null) {
    return page(421, 'Not a *.localhost name', `This is Styxy's names proxy: it serves http://NAME.localhost:${port}/ only, not the host "${host ?? ''}".`)
  }
  const known = d.names.names()
  const listing = known.length ? 'Servers with a name now:' : 'No server has a name now: start one with styxy run.'
  if (name === '') return page(404, 'Styxy names', listing, known, port)
  const lease = d.names.lease(name)
  if (!lease) return page(404, `No server named ${name}`, `No live server of this Styxy is named "${name}". ${listing}`, known, port)
  if (d.ownPorts().includes(lease.port)) return page(502, `${name} is not served here`, `Port ${lease.port} is Styxy's own.`)
  // Only a listener of this user: a stranger's process on a port our lease has not bound yet is not our server.
  const uid = process.geteuid?.()
  const mine = d.listenersOn(lease.port).filter((l) => uid === undefined || l.uid === uid)
  const v4 = mine.find((l) => l.family === 'ipv4' && (l.address === '0.0.0.0' || l.address.startsWith('127.')))
  const v6 = mine.find((l) => l.family === 'ipv6' && (l.address === '::' || l.address === '::1'))
  if (v4) return {target: `http://127.0.0.1:${lease.port}`}
  if (v6) return {target: `http://[::1]:${lease.port}`}
  return page(502, `${name} is not listening`, `"${name}" holds port ${lease.port}, but nothing of yours listens there on loopback now (starting, or stopped).`)
}

/** The proxy's HTTP server: every request and upgrade routed by its Host, each lookup made at that moment. */
export function makeProxyServer(d: ProxyDeps): http.Server {
  // xfwd: the app sees the real client in X-Forwarded-For and the name it was asked by in X-Forwarded-Host.
  // The Host header is passed on unchanged: Vite (and others) accept *.localhost hosts by default. Connections
  // to the servers are kept alive: a new one per request doubled the proxy's cost (bench/proxy.ts). A kept
  // socket is only reused for the target a request's own lookup chose.
  const proxy = createProxyServer({xfwd: true, ws: true, agent: new http.Agent({keepAlive: true})})
  proxy.on('error', (err, _req, res) => {
    const why = (err as NodeJS.ErrnoException).code ?? err.message
    if (res instanceof http.ServerResponse) {
      if (!res.headersSent) answer(res, page(502, 'The server did not answer', `Forwarding failed (${why}).`))
      else res.destroy()
    } else {
      (res as Duplex).destroy()
    }
  })
  // Long-lived by design (see above): no request timeout for streamed bodies; headers still have to arrive.
  const server = http.createServer({requestTimeout: 0, headersTimeout: 30_000}, (req, res) => {
    const r = route(req.headers.host, d)
    if ('target' in r) proxy.web(req, res, {target: r.target})
    else answer(res, r)
  })
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    const r = route(req.headers.host, d)
    if ('target' in r) {
      proxy.ws(req, socket, head, {target: r.target})
      return
    }
    socket.end(`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? 'Error'}\r\nContent-Type: text/html; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(r.body)}\r\nConnection: close\r\n\r\n${r.body}`)
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  return server
}

function answer(res: http.ServerResponse, p: {status: number; body: string}): void {
  res.writeHead(p.status, {'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(p.body), 'cache-control': 'no-store'})
  res.end(p.body)
}
