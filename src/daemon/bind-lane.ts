import type http from 'node:http'
import type net from 'node:net'
import {Routes} from '../protocol/routes.js'
import {rawAnswer} from './raw-answer.js'

// The interceptor's one request (and `styxy run`'s exit watch), answered on the Unix socket without node:http
// and Koa.
//
// Every intercepted bind opens a connection, sends one `POST /v1/bind` with `Connection: close` in a single
// write, and reads one answer. node:http and Koa cost ~110 µs of daemon CPU per such connection on top of the
// decision itself (parser, request/response objects, context, middleware), which kept the daemon under its
// decisions/s target. This lane takes a request only when its first read holds all of it, in exactly the shape
// the interceptor sends; anything else (another route, another header, a partial read, pipelining, keep-alive,
// a body that does not parse or validate) is handed, bytes untouched, to the node:http server and the Koa app,
// which answer it as before. So the lane never parses what it is unsure of, never waits for more bytes, and
// every refusal (Origin, Referer, bad input) still comes from the one app. (An exit watch is answered when its
// connection ends; waiting for that end is the request's whole point.)

/** What the lane may answer without the app, by its exact request line. */
const LANE_ROUTES = new Map<string, LaneRoute>([
  [`POST ${Routes.bind.path} HTTP/1.1\r\n`, 'bind'],
  [`POST ${Routes.exitWatch.path} HTTP/1.1\r\n`, 'exitWatch'],
])
export type LaneRoute = 'bind' | 'exitWatch'
/** A request bigger than this in its first read is the app's (its body limit is 64 KB; ours are < 1 KB). */
const MAX_REQUEST = 16 * 1024
/** The only headers the lane understands; any other (Origin, Referer, Expect, Transfer-Encoding, ...) is the app's. */
const KNOWN = new Set(['host', 'content-type', 'content-length', 'connection', 'user-agent', 'accept'])
// RFC 9110 token, a colon, a value without control characters (tab allowed). Node's parser is as strict.
const HEADER = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([^\x00-\x08\x0a-\x1f\x7f]*?)[\t ]*$/

export interface LaneAnswer {
  status: number
  body: unknown
}

/**
 * The route and body of a request the lane can take, or undefined when it is the app's. Exported for tests:
 * the lane's whole judgement of a request is this function.
 */
export function laneRequest(chunk: Buffer): {route: LaneRoute; body: object} | undefined {
  if (chunk.length > MAX_REQUEST) return undefined
  const end = chunk.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const exact = interceptorLength(chunk, end)
  if (exact !== undefined) return requestBody('bind', chunk, end, exact)
  const head = chunk.toString('latin1', 0, end)
  const lineEnd = head.indexOf('\r\n') + 2
  const route = LANE_ROUTES.get(head.slice(0, lineEnd))
  if (route === undefined) return undefined
  const seen = new Map<string, string>()
  for (const line of head.slice(lineEnd).split('\r\n')) {
    const m = HEADER.exec(line)
    if (!m) return undefined
    const name = m[1].toLowerCase()
    if (!KNOWN.has(name) || seen.has(name)) return undefined
    seen.set(name, m[2])
  }
  if (seen.get('connection')?.toLowerCase() !== 'close') return undefined
  if (seen.get('content-type')?.toLowerCase().split(';')[0].trim() !== 'application/json') return undefined
  const length = seen.get('content-length')
  return length !== undefined && LENGTH.test(length) ? requestBody(route, chunk, end, Number(length)) : undefined
}

/** A Content-Length the lane takes: digits only, no sign. */
const LENGTH = /^\d{1,5}$/

/**
 * The head the interceptor sends on a Unix socket (interceptor/ipc.zig, `frame`), byte for byte up to its
 * Content-Length's value: one the reading above takes too. Compared whole, it spares a lone bind the ~20 µs
 * that reading costs on a cold event loop; any other head, even one byte off, is read as above.
 */
const INTERCEPTOR_HEAD = Buffer.from(`POST ${Routes.bind.path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: `, 'latin1')

/** Its Content-Length, when the head is exactly the interceptor's. */
function interceptorLength(chunk: Buffer, end: number): number | undefined {
  if (end <= INTERCEPTOR_HEAD.length || chunk.compare(INTERCEPTOR_HEAD, 0, INTERCEPTOR_HEAD.length, 0, INTERCEPTOR_HEAD.length) !== 0) return undefined
  const length = chunk.toString('latin1', INTERCEPTOR_HEAD.length, end)
  // Anything after the digits (another header) is for the full reading.
  return LENGTH.test(length) ? Number(length) : undefined
}

function requestBody(route: LaneRoute, chunk: Buffer, end: number, length: number): {route: LaneRoute; body: object} | undefined {
  if (chunk.length - (end + 4) !== length) return undefined
  try {
    const body: unknown = JSON.parse(chunk.toString('utf8', end + 4))
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? {route, body} : undefined
  } catch {
    return undefined
  }
}

/** The lane's own connections (node:http tracks a connection only once it is handed over). */
export interface BindLane {
  /** Destroy the connections the lane holds now: waiting for their first byte, or being answered. */
  closeAll(): void
}

/**
 * Answers a request the lane took, or undefined to give it to the app after all (e.g. when it does not
 * validate). The socket is for answers that wait on the connection itself (the exit watch).
 */
export type LaneServe = (route: LaneRoute, body: object, socket: net.Socket) => LaneAnswer | Promise<LaneAnswer> | undefined

/**
 * Put the lane in front of a node:http server: each new connection is read once; a request the lane can take
 * is answered by `serve`; anything else goes to the server's own connection handler with the bytes read put
 * back first.
 * The server keeps listening itself, so its timeouts, tracking and closeAllConnections hold for every
 * connection handed to it; the lane's own are closed with `closeAll`.
 * Null (and nothing changed) if the server is not as expected: the app then answers everything, only slower.
 */
export function installBindLane(server: http.Server, serve: LaneServe, idleMs: number): BindLane | null {
  const handlers = server.listeners('connection') as ((socket: net.Socket) => void)[]
  // node:http's own handler is the only one we know how to stand in front of; anything else, no lane.
  if (handlers.length !== 1) return null
  const [toApp] = handlers
  const held = new Set<net.Socket>()
  server.removeListener('connection', toApp)
  server.on('connection', (socket: net.Socket) => {
    held.add(socket)
    const drop = () => socket.destroy()
    const forget = () => held.delete(socket)
    const onData = (chunk: Buffer) => {
      socket.removeListener('data', onData)
      socket.setTimeout(0)
      let answer: LaneAnswer | Promise<LaneAnswer> | undefined
      try {
        const request = laneRequest(chunk)
        answer = request === undefined ? undefined : serve(request.route, request.body, socket)
      } catch {
        return drop() // serve() reports its failures as answers; anything thrown here is a bug, not a reason to hang
      }
      if (answer === undefined) {
        held.delete(socket)
        socket.removeListener('error', drop)
        socket.removeListener('timeout', drop)
        socket.removeListener('close', forget)
        // No listener is left, so the chunk waits in the stream's buffer; the app's handler adds its own and
        // reads it first. Node's parser otherwise reads the handle directly, so nothing else is in between.
        socket.unshift(chunk)
        toApp.call(server, socket)
        return
      }
      const send = ({status, body: out}: LaneAnswer) => {
        if (socket.destroyed) return
        // Closed once written, as node:http does after `Connection: close` (destroySoon): the server's sockets
        // are half-open, so end() alone would keep the fd until the client closes its side, which a stopped
        // client never does.
        socket.end(rawAnswer(status, out), drop)
      }
      if (answer instanceof Promise) answer.then(send).catch(drop)
      else send(answer)
    }
    socket.on('data', onData)
    socket.on('error', drop)
    socket.on('close', forget)
    // A connection that never sends a byte must not stay forever (the app's own timeouts start after hand-off).
    socket.setTimeout(idleMs, drop)
  })
  return {closeAll: () => { for (const socket of held) socket.destroy() }}
}
