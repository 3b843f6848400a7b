import fs from 'node:fs'
import http from 'node:http'
import {DAEMON_HOST, daemonPort, resolvePaths} from '../paths.js'
import {tcpListenerIsOurs} from '../daemon/socket-table.js'

export interface Endpoint {
  socket: string
  host: string
  port: number
  tokenFile: string
  /** Use one transport only (doctor checks each; tests pin one); default: the socket, then TCP. */
  only?: 'unix' | 'tcp'
}

export function endpointFromEnv(env: NodeJS.ProcessEnv = process.env): Endpoint {
  const paths = resolvePaths(env)
  return {socket: paths.socket, host: env.STYXY_DAEMON_HOST || DAEMON_HOST, port: daemonPort(env), tokenFile: paths.token}
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

function once(options: http.RequestOptions, body: string | undefined, timeoutMs: number, via: 'unix' | 'tcp'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({...options, agent: false, timeout: timeoutMs}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), via}))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new TransportError('DAEMON_TIMEOUT', `the daemon did not answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** One request: the Unix socket first (no token needed), TCP with the token only when the socket is unreachable. */
export async function send(endpoint: Endpoint, method: string, path: string, body: unknown, timeoutMs: number): Promise<RawResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const headers: Record<string, string> = {host: 'localhost', accept: 'application/json'}
  if (payload !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(payload))
  }
  if (endpoint.only !== 'tcp') {
    try {
      return await once({socketPath: endpoint.socket, method, path, headers}, payload, timeoutMs, 'unix')
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
    return await once({
      host: endpoint.host, port: endpoint.port, method, path,
      headers: {...headers, host: `${endpoint.host}:${endpoint.port}`, authorization: `Bearer ${token}`},
    }, payload, timeoutMs, 'tcp')
  } catch (error) {
    if (UNREACHABLE.has((error as NodeJS.ErrnoException).code ?? '')) {
      throw new TransportError('DAEMON_NOT_RUNNING', `the Styxy daemon is not running (no answer on ${endpoint.socket} nor ${endpoint.host}:${endpoint.port}); start it with: styxy daemon start`)
    }
    throw error
  }
}
