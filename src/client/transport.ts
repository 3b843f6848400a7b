import fs from 'node:fs'
import net from 'node:net'
import {DAEMON_HOST, daemonPort, resolvePaths} from '../paths.js'
import {tcpListenerIsOurs} from '../kernel/owner.js'
import {inspectStateDir} from '../shared/state-dir-trust.js'

export interface Endpoint {
  socket: string
  host: string
  port: number
  tokenFile: string
  /** Checked before every request (src/shared/state-dir-trust.ts): nothing is sent into a directory we cannot trust. */
  stateDir?: string
  /** Use one transport only (doctor checks each; tests pin one); default: the socket, then TCP. */
  only?: 'unix' | 'tcp'
}

export function endpointFromEnv(env: NodeJS.ProcessEnv = process.env): Endpoint {
  const paths = resolvePaths(env)
  return {socket: paths.socket, host: daemonHost(env), port: daemonPort(env), tokenFile: paths.token, stateDir: paths.stateDir}
}

/**
 * STYXY_DAEMON_HOST: the daemon listens on 127.0.0.1 only, so `localhost` is taken as 127.0.0.1 (it may resolve
 * to ::1 first, where nothing listens); any other value is used as given (a numeric IPv4 address).
 */
export function daemonHost(env: NodeJS.ProcessEnv = process.env): string {
  const raw = (env.STYXY_DAEMON_HOST ?? '').trim()
  return raw === '' || raw.toLowerCase() === 'localhost' ? DAEMON_HOST : raw
}

/** Transport-level failures, named so callers can say what to do (start the daemon, wait, report a bug). */
export class TransportError extends Error {
  constructor(readonly code: 'DAEMON_NOT_RUNNING' | 'DAEMON_TIMEOUT' | 'BAD_RESPONSE', message: string) {
    super(message)
  }
}

export interface RawResponse {
  status: number
  body: string
  via: 'unix' | 'tcp'
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'EACCES', 'ECONNRESET', 'EPERM'])

// HTTP/1.1 over a plain socket rather than node:http: `styxy run` sits in front of every dev server's start,
// and node:http costs a short-lived process ~15 ms (loading it, then its first request) against ~3 ms for
// this. The daemon always answers with Content-Length (Koa's JSON and text bodies) and closes after
// `Connection: close`; chunked answers are decoded anyway, and anything else is BAD_RESPONSE.

type Target = {path: string} | {host: string; port: number}

// Request-line and header injection: nothing but visible ASCII may reach the wire.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const TARGET = /^\/[\x21-\x7e]*$/

function encode(method: string, path: string, headers: Record<string, string>, body: string | undefined): Buffer {
  if (!TOKEN.test(method)) throw new TypeError(`invalid HTTP method ${JSON.stringify(method)}`)
  if (!TARGET.test(path)) throw new TypeError(`invalid request path ${JSON.stringify(path)}`)
  let head = `${method} ${path} HTTP/1.1\r\nconnection: close\r\n`
  for (const [k, v] of Object.entries(headers)) {
    if (!TOKEN.test(k) || /[\r\n]/.test(v)) throw new TypeError(`invalid header ${k}`)
    head += `${k}: ${v}\r\n`
  }
  return Buffer.from(head + '\r\n' + (body ?? ''), 'utf8')
}

/** An answer still arriving: `total` is its whole size in bytes once its head declares it, else 0. */
export interface Incomplete {
  total: number
}

/** Status and body once the whole answer is in `data`; what is known of the rest while more is to come. Throws on garbage. */
export function parseAnswer(data: Buffer, ended: boolean): {status: number; body: string} | Incomplete {
  const headEnd = data.indexOf('\r\n\r\n')
  if (headEnd < 0) {
    if (ended) throw new TransportError('BAD_RESPONSE', 'the daemon closed the connection before answering')
    return {total: 0}
  }
  const lines = data.subarray(0, headEnd).toString('latin1').split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0])
  if (!m) throw new TransportError('BAD_RESPONSE', `not an HTTP answer: ${JSON.stringify(lines[0].slice(0, 40))}`)
  const header = (name: string) => lines.find((l) => l.slice(0, name.length + 1).toLowerCase() === name + ':')?.slice(name.length + 1).trim()
  const rest = data.subarray(headEnd + 4)
  const status = Number(m[1])
  if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
    const chunks: Buffer[] = []
    for (let at = 0; ;) {
      const eol = rest.indexOf('\r\n', at)
      if (eol < 0) break
      // Hex digits only (an optional extension after ';'): parseInt would take "-6" and loop back forever.
      const sizeText = /^([0-9a-fA-F]{1,8})(?:;|$)/.exec(rest.subarray(at, eol).toString('latin1'))
      if (!sizeText) throw new TransportError('BAD_RESPONSE', 'a malformed chunked answer')
      const size = Number.parseInt(sizeText[1], 16)
      if (size === 0) return {status, body: Buffer.concat(chunks).toString('utf8')}
      if (rest.length < eol + 2 + size + 2) break
      chunks.push(rest.subarray(eol + 2, eol + 2 + size))
      at = eol + 2 + size + 2
    }
    if (ended) throw new TransportError('BAD_RESPONSE', 'the daemon closed the connection mid-answer')
    return {total: 0}
  }
  const length = header('content-length')
  if (length !== undefined) {
    const n = Number(length)
    if (!Number.isInteger(n) || n < 0) throw new TransportError('BAD_RESPONSE', `a bad Content-Length (${length})`)
    if (rest.length >= n) return {status, body: rest.subarray(0, n).toString('utf8')}
    if (ended) throw new TransportError('BAD_RESPONSE', 'the daemon closed the connection mid-answer')
    return {total: headEnd + 4 + n}
  }
  return ended ? {status, body: rest.toString('utf8')} : {total: 0} // no length: the body ends with the connection
}

function once(target: Target, request: Buffer, timeoutMs: number, via: 'unix' | 'tcp'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(target)
    // Chunks are joined only when the answer may be whole: a large one (a listing of 10,000 leases) would
    // otherwise be copied again with every chunk.
    const chunks: Buffer[] = []
    let size = 0
    let total = 0
    let settled = false
    const finish = (error: Error | null, answer?: {status: number; body: string}) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve({...answer!, via})
    }
    // A deadline for the whole exchange: a daemon that accepts and then hangs (SIGSTOP) must not hang us.
    const timer = setTimeout(() => finish(new TransportError('DAEMON_TIMEOUT', `the daemon did not answer within ${timeoutMs} ms`)), timeoutMs)
    const check = (ended: boolean) => {
      if (ended && size === 0) {
        // Closed without a byte (a daemon stopping, a leftover socket's stranger): like node:http's "socket hang
        // up", a reset, so the caller tries TCP and then says the daemon is not running.
        finish(Object.assign(new Error('the daemon closed the connection without answering'), {code: 'ECONNRESET'}))
        return
      }
      if (chunks.length > 1) chunks.splice(0, chunks.length, Buffer.concat(chunks, size))
      try {
        const answer = parseAnswer(chunks[0], ended)
        if ('status' in answer) finish(null, answer)
        else total = answer.total
      } catch (error) {
        finish(error as Error)
      }
    }
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size >= total) check(false)
    })
    socket.on('end', () => check(true))
    socket.on('error', (error) => finish(error))
    socket.on('close', () => check(true))
    // Not end(): Node's server aborts a request whose client half-closes before it is answered.
    socket.write(request)
  })
}

export function jsonHeaders(payload: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {host: 'localhost', accept: 'application/json'}
  if (payload !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(payload))
  }
  return headers
}

/** A request left open on purpose: the end of its connection is the message (POST /v1/exit-watch). */
export interface HeldRequest {
  /** The connection ended, or an answer came, before `end()`: the daemon is not holding it any more. */
  readonly lost: boolean
  /** Close the connection once the request has reached the kernel (a close before that would send nothing). */
  end(): Promise<void>
}

/**
 * Send a request and keep its connection open, on the Unix socket only (on `connected`, a fresh connection to
 * it, when given): a caller that cannot hold one there (`lost`) does what the held request would have done
 * the old way, with a request of its own.
 */
export function hold(endpoint: Endpoint, method: string, path: string, body: unknown, connected?: net.Socket): HeldRequest {
  if (endpoint.only === 'tcp' || !trusted(endpoint)) {
    connected?.destroy()
    return {lost: true, end: async () => {}}
  }
  const payload = JSON.stringify(body)
  const usable = connected !== undefined && !connected.destroyed && !connected.readableEnded
  if (!usable) connected?.destroy()
  const socket = usable ? connected : net.connect({path: endpoint.socket})
  let lost = false
  let ending = false
  const gone = () => { if (!ending) lost = true }
  socket.on('error', gone)
  socket.on('close', gone)
  socket.on('end', gone)
  // The daemon answers only once the connection ends, so any byte before that is a refusal (an older daemon's
  // 404, a validation error): read it, and count the hold as lost.
  socket.on('data', gone)
  const sent = new Promise<void>((resolve) => {
    socket.once('close', () => resolve())
    socket.write(encode(method, path, jsonHeaders(payload), payload), () => resolve())
  })
  return {
    get lost() { return lost },
    async end() {
      await sent
      ending = true
      socket.destroy()
    },
  }
}

/** Throws UnsafeStateDirError when the endpoint's state directory may not be trusted (a link, another user's, open to writes). */
export function checkStateDir(endpoint: Endpoint): void {
  if (endpoint.stateDir !== undefined) inspectStateDir(endpoint.stateDir)
}

function trusted(endpoint: Endpoint): boolean {
  try {
    checkStateDir(endpoint)
    return true
  } catch {
    return false
  }
}

/** One request: the Unix socket first (no token needed), TCP with the token only when the socket is unreachable. */
export async function send(endpoint: Endpoint, method: string, path: string, body: unknown, timeoutMs: number): Promise<RawResponse> {
  checkStateDir(endpoint)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const headers = jsonHeaders(payload)
  if (endpoint.only !== 'tcp') {
    try {
      return await once({path: endpoint.socket}, encode(method, path, headers, payload), timeoutMs, 'unix')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? ''
      if (!UNREACHABLE.has(code)) throw error
      if (endpoint.only === 'unix') throw new TransportError('DAEMON_NOT_RUNNING', `no answer on ${endpoint.socket} (${code})`)
    }
  }
  if (!tcpListenerIsOurs(endpoint.host, endpoint.port)) {
    throw new TransportError('DAEMON_NOT_RUNNING', `the Styxy daemon is not running (no answer on ${endpoint.socket}, and no listener of this user on ${endpoint.host}:${endpoint.port}); start it with: styxy daemon start`)
  }
  let token = ''
  try {
    token = fs.readFileSync(endpoint.tokenFile, 'utf8').trim()
  } catch {
    // No token file: the daemon has never run for this state directory.
  }
  try {
    const tcpHeaders = {...headers, host: `${endpoint.host}:${endpoint.port}`, authorization: `Bearer ${token}`}
    return await once({host: endpoint.host, port: endpoint.port}, encode(method, path, tcpHeaders, payload), timeoutMs, 'tcp')
  } catch (error) {
    if (UNREACHABLE.has((error as NodeJS.ErrnoException).code ?? '')) {
      throw new TransportError('DAEMON_NOT_RUNNING', `the Styxy daemon is not running (no answer on ${endpoint.socket} nor ${endpoint.host}:${endpoint.port}); start it with: styxy daemon start`)
    }
    throw error
  }
}
