import type http from 'node:http'
import type net from 'node:net'
import {Routes} from '../protocol/routes.js'

// The interceptor's one request, answered on the Unix socket without node:http and Koa.
//
// Every intercepted bind opens a connection, sends one `POST /v1/bind` with `Connection: close` in a single
// write, and reads one answer. node:http and Koa cost ~110 µs of daemon CPU per such connection on top of the
// decision itself (parser, request/response objects, context, middleware), which kept the daemon under its
// decisions/s target. This lane takes a request only when its first read holds all of it, in exactly the shape
// the interceptor sends; anything else (another route, another header, a partial read, pipelining, keep-alive,
// a body that does not parse or validate) is handed, bytes untouched, to the node:http server and the Koa app,
// which answer it as before. So the lane never parses what it is unsure of, never waits, and every refusal
// (Origin, Referer, bad input) still comes from the one app.

/** What the lane may answer without the app. */
const REQUEST_LINE = `POST ${Routes.bind.path} HTTP/1.1\r\n`
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
 * The body of a request the lane can take, or undefined when it is the app's. Exported for tests: the lane's
 * whole judgement of a request is this function.
 */
export function laneBody(chunk: Buffer): unknown {
  if (chunk.length > MAX_REQUEST) return undefined
  const end = chunk.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const head = chunk.toString('latin1', 0, end)
  if (!head.startsWith(REQUEST_LINE)) return undefined
  const seen = new Map<string, string>()
  for (const line of head.slice(REQUEST_LINE.length).split('\r\n')) {
    const m = HEADER.exec(line)
    if (!m) return undefined
    const name = m[1].toLowerCase()
    if (!KNOWN.has(name) || seen.has(name)) return undefined
    seen.set(name, m[2])
  }
  if (seen.get('connection')?.toLowerCase() !== 'close') return undefined
  if (seen.get('content-type')?.toLowerCase().split(';')[0].trim() !== 'application/json') return undefined
  const length = seen.get('content-length')
  if (length === undefined || !/^\d{1,5}$/.test(length) || chunk.length - (end + 4) !== Number(length)) return undefined
  try {
    const body: unknown = JSON.parse(chunk.toString('utf8', end + 4))
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? body : undefined
  } catch {
    return undefined
  }
}

function reasonOf(status: number): string {
  return status === 200 ? 'OK' : 'Error'
}

/**
 * Put the lane in front of a node:http server: each new connection is read once; a request the lane can take
 * is answered by `serve` (which returns undefined to give it to the app after all, e.g. when it does not
 * validate); anything else goes to the server's own connection handler with the bytes read put back first.
 * The server keeps listening itself, so its timeouts, connection tracking and closeAllConnections still hold.
 * False (and nothing changed) if the server is not as expected: the app then answers everything, only slower.
 */
export function installBindLane(server: http.Server, serve: (body: unknown) => Promise<LaneAnswer> | undefined, idleMs: number): boolean {
  const handlers = server.listeners('connection') as ((socket: net.Socket) => void)[]
  // node:http's own handler is the only one we know how to stand in front of; anything else, no lane.
  if (handlers.length !== 1) return false
  const [toApp] = handlers
  server.removeListener('connection', toApp)
  server.on('connection', (socket: net.Socket) => {
    const onError = () => socket.destroy()
    const onData = (chunk: Buffer) => {
      socket.removeListener('data', onData)
      socket.setTimeout(0)
      const body = laneBody(chunk)
      const answer = body === undefined ? undefined : serve(body)
      if (answer === undefined) {
        socket.removeListener('error', onError)
        socket.removeListener('timeout', onTimeout)
        // No listener is left, so the chunk waits in the stream's buffer; the app's handler adds its own and
        // reads it first. Node's parser otherwise reads the handle directly, so nothing else is in between.
        socket.unshift(chunk)
        toApp.call(server, socket)
        return
      }
      answer.then(({status, body: out}) => {
        const text = JSON.stringify(out)
        socket.end(`HTTP/1.1 ${status} ${reasonOf(status)}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`)
      }, onError)
    }
    // A connection that never sends a byte must not stay forever (the app's own timeouts start after hand-off).
    const onTimeout = () => socket.destroy()
    socket.on('data', onData)
    socket.on('error', onError)
    socket.setTimeout(idleMs, onTimeout)
  })
  return true
}
