import {expect} from 'chai'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {ErrorCodes} from '../../src/protocol/errors.js'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {errorCodeOf, rawExchange, report, rssMb, scaled, statusOf, type Target} from '../helpers/proof.js'

// A seeded generator, so a failure can be replayed (STYXY_FUZZ_SEED).
const SEED = Number(process.env.STYXY_FUZZ_SEED ?? Date.now() % 1_000_000)
let state = SEED || 1
const rnd = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff)
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]
const int = (n: number) => Math.floor(rnd() * n)
const junkBytes = (n: number) => Buffer.from(Array.from({length: n}, () => int(256)))

// Values that no field of its kind accepts: every mutation below makes a body invalid by construction, so any
// 2xx on a route that changes state is a failure.
const BAD_NUMBER = [-1, 0, 1.5, null, [], {}, true, '80', 2 ** 53, 1e7]
const BAD_STRING = [null, 1, [], {}, true, 'x'.repeat(5000)]
const BAD = {
  number: BAD_NUMBER, string: BAD_STRING, bool: [null, 1, 'true', [], {}],
  id: [...BAD_STRING, 'has space', ''], service: [...BAD_STRING, 'Dev', '', 'no/slash'],
  ports: [[1e7], 'x', {}, Array(65).fill(80), [0]],
} as const
type Kind = keyof typeof BAD

interface BodyRoute {
  method: 'POST'
  path: string
  valid: Record<string, unknown>
  fields: Record<string, Kind>
  /** Unknown keys are refused (strict schema). */
  strict: boolean
  /** A field without which the body is refused. */
  required?: string
}

const BODY_ROUTES = (holder: number): BodyRoute[] => [
  {method: 'POST', path: '/v1/allocations', valid: {service: 'dev', pid: holder}, strict: true, required: 'service',
    fields: {service: 'service', port: 'number', name: 'string', instanceId: 'id', pid: 'number', project: 'string'}},
  {method: 'POST', path: '/v1/bind', valid: {pid: holder, port: 3000}, strict: true, required: 'port',
    fields: {pid: 'number', port: 'number', command: 'string', cwd: 'string', project: 'string', instanceId: 'id', name: 'string', taken: 'ports', reassign: 'bool'}},
  {method: 'POST', path: '/v1/follows', valid: {pid: holder, port: 3000, to: 3001}, strict: true, required: 'to',
    fields: {pid: 'number', port: 'number', to: 'number', project: 'string'}},
  {method: 'POST', path: '/v1/instances', valid: {id: 'fuzz-instance', pid: holder}, strict: true,
    fields: {id: 'id', pid: 'number', name: 'string', project: 'string'}},
  {method: 'POST', path: '/register-instance', valid: {instance_id: 'fuzz-legacy', pid: holder}, strict: false,
    fields: {instance_id: 'id', pid: 'number', project_path: 'string', port: 'number', service_type: 'string'}},
  {method: 'POST', path: '/allocate', valid: {service_type: 'dev'}, strict: false, required: 'service_type',
    fields: {service_type: 'service', service_name: 'string', preferred_port: 'number', instance_id: 'id', project_path: 'string', dry_run: 'bool'}},
  {method: 'POST', path: '/instance/register', valid: {instance_id: 'fuzz-legacy-2'}, strict: false, required: 'instance_id',
    fields: {instance_id: 'id', working_directory: 'string'}},
]

/** A body for `route` that must be refused: malformed text, a non-object, a wrong field, an unknown or missing one. */
function badBody(route: BodyRoute): string {
  const body: Record<string, unknown> = {...route.valid}
  const text = () => JSON.stringify(body)
  switch (int(route.strict ? 7 : 4)) {
    case 0: { // truncated JSON
      const t = text()
      return t.slice(0, int(t.length - 1))
    }
    case 1: // not JSON at all
      return pick(['', '{', 'nul', '{"a":}', "{'a':1}", '{"a":1,}', junkBytes(1 + int(64)).toString('latin1'), '\u0000', '[' .repeat(5000)])
    case 2: // JSON, but not an object
      return JSON.stringify(pick([[], [body], 1, 'text', null, true, [[[[[]]]]]]))
    case 3: { // a field of the wrong kind (several at times)
      for (let n = 1 + int(2); n > 0; n--) {
        const [field, kind] = pick(Object.entries(route.fields))
        body[field] = pick(BAD[kind] as readonly unknown[])
      }
      return text()
    }
    case 4: // an unknown field
      body[pick(['colour', '__proto__x', 'constructor', 'Service', 'port ', ''])] = pick([1, 'x', null, {}])
      return text()
    case 5: // a required field missing
      if (!route.required) return '[]'
      delete body[route.required]
      return text()
    default: // deep nesting inside a known field
      return `{"${Object.keys(route.valid)[0]}":${'['.repeat(2000)}${']'.repeat(2000)}}`
  }
}

const READ_PATHS = ['/v1/health', '/v1/status', '/v1/service-types', '/v1/allocations', '/v1/instances', '/v1/reassignments', '/v1/metrics', '/v1/ports', '/v1/ports/', '/v1/suggest/', '/observe/', '/suggest/']
const JUNK_SEGMENTS = ['%', '%zz', '%00', '..', '../..', '%2e%2e', '-1', '0', '65536', '3000.5', '1e3', 'NaN', '[]', '%ff%fe', 'ä', '😀', ' ', 'a'.repeat(3000), 'l-' + 'f'.repeat(12), '?', '#', ';', '\\']
const JUNK_QUERIES = ['', '?count=-1', '?count=1e9', '?count=abc', '?start=0&end=70000', '?start=5&end=1', '?since=yesterday', '?since=', '?service=Nope', '?a[]=1&a[]=2', '?count=1&count=2', '?pid=0', '?%=%', '?' + 'x=1&'.repeat(500)]
const METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'TRACE', 'FOO', 'get', 'PROPFIND', 'DELETE', 'POST']
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

interface Request {
  method: string
  bytes: Buffer
  /** May this request change state if it succeeds? Then it must not succeed. */
  mutating: boolean
}

function http(method: string, target: string, headers: string[], body?: string | Buffer): Buffer {
  const b = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')
  const head = [`${method} ${target} HTTP/1.1`, ...headers, 'Connection: close']
  if (body !== undefined) head.push(`Content-Length: ${b.length}`)
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), b])
}

/** One random hostile request. `auth` is what the TCP transport needs to get past the door (empty on the socket). */
function generate(auth: string[], holder: number): Request {
  const json = 'Content-Type: application/json'
  const kind = int(10)
  if (kind < 4) { // a state-changing route with a body that must be refused
    const route = pick(BODY_ROUTES(holder))
    return {method: 'POST', mutating: true, bytes: http('POST', route.path, [...auth, pick([json, json, json, 'Content-Type: application/json; charset=utf-16', 'Content-Type: text/plain', 'Content-Type: '])], badBody(route))}
  }
  if (kind < 5) { // state-changing routes addressed at things that do not exist, or with bad parameters
    const target = pick([
      `/v1/allocations/${pick(['nope', 'l-' + 'z'.repeat(12), '%00', '..', 'a'.repeat(300)])}`,
      `/v1/instances/${pick(['nope', '%2F', 'x'.repeat(300)])}`,
      `/v1/instances/${pick(['nope', 'x y', '%00'])}/heartbeat`,
      `/v1/cleanup?pid=${pick(['0', '-1', 'abc', '1e9', ''])}`,
    ])
    const method = target.startsWith('/v1/cleanup') || target.endsWith('heartbeat') ? 'POST' : 'DELETE'
    return {method, mutating: true, bytes: http(method, target, auth)}
  }
  if (kind < 7) { // any method, junk paths and queries
    const method = pick(METHODS)
    const p = pick(READ_PATHS) + (rnd() < 0.6 ? encodeURI(pick(JUNK_SEGMENTS)).replace(/%25/g, '%') : '') + pick(JUNK_QUERIES)
    const mutating = !SAFE.has(method)
    return {method, mutating, bytes: http(method, p, auth, mutating && rnd() < 0.5 ? '{}' : undefined)}
  }
  if (kind < 9) { // malformed HTTP itself
    const variants: (() => Buffer)[] = [
      () => junkBytes(1 + int(200)),
      () => Buffer.from(`GET /v1/health HTTP/1.1\r\n${auth.join('\r\n')}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello`),
      () => Buffer.from(`POST /v1/allocations HTTP/1.1\r\n${auth.join('\r\n')}\r\n${json}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\n{}}\r\n0\r\n\r\n`),
      () => Buffer.from(`POST /v1/allocations HTTP/1.1\r\n${auth.join('\r\n')}\r\n${json}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`),
      () => Buffer.from(`GET /v1/health HTTP/9.9\r\n\r\n`),
      () => Buffer.from(`GET /v1/health\r\n\r\n`),
      () => Buffer.from(`GET /v1/health HTTP/1.1\r\nBad Header Name: x\r\n\r\n`),
      () => Buffer.from(`GET /v1/health HTTP/1.1\r\nX: ${'\u0001'}\r\n\r\n`),
      () => Buffer.from(`GET /v1/health HTTP/1.1\r\n${auth.join('\r\n')}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      () => Buffer.from(`GET /v1/health HTTP/1.1\r\n${auth.join('\r\n')}\r\n${Array.from({length: 3000}, (_, i) => `X-${i}: y`).join('\r\n')}\r\n\r\n`),
      () => Buffer.from(`GET ${'/'.repeat(20_000)} HTTP/1.1\r\n\r\n`),
      () => Buffer.from(`POST /v1/bind HTTP/1.1\r\n${auth.join('\r\n')}\r\n${json}\r\nContent-Length: -5\r\n\r\n{}`),
    ]
    const bytes = pick(variants)()
    return {method: 'RAW', mutating: !bytes.toString('latin1').startsWith('GET '), bytes}
  }
  // Huge: a body declared far over the limit, of which only the first 128 KB is sent: the daemon must refuse it
  // from what it has (or from its declared length), without waiting for or buffering the rest.
  const route = pick(BODY_ROUTES(holder))
  const full = http('POST', route.path, [...auth, json], `{"name":"${'x'.repeat(200_000 + int(2_000_000))}"}`)
  return {method: 'POST', mutating: true, bytes: full.subarray(0, 128 * 1024)}
}

const KNOWN_CODES = new Set(Object.keys(ErrorCodes))

describe('hostile input: the HTTP API fuzzed', () => {
  let d: TestDaemon
  const holder = spawnHolder()
  // The keeper instance is part of the state that must not change: it must not expire by itself during a soak.
  before(async () => { d = await startDaemon({env: {STYXY_INSTANCE_TTL_MS: String(24 * 3600_000)}}) })
  after(async () => {
    await killAll([holder])
    await d.stop()
    removeHome(d.home)
  })

  const snapshot = async () => JSON.stringify({
    leases: await d.client.leases(), instances: await d.client.instances(), moves: (await d.client.reassignments()).length,
  })

  it('random and malformed requests get only 4xx with clear codes; no crash, no change of state, memory flat', async function () {
    const total = scaled(1500, 100_000)
    this.timeout(scaled(60_000, 3_600_000))
    const token = fs.readFileSync(path.join(d.home, 'token'), 'utf8').trim()
    const unix: Target = {path: path.join(d.home, 'daemon.sock')}
    const tcp: Target = {host: '127.0.0.1', port: d.port}
    const tcpAuth = [`Host: 127.0.0.1:${d.port}`, `Authorization: Bearer ${token}`]
    // Something to lose: a lease, an instance, a move.
    await d.client.allocate({service: 'api', pid: holder.pid})
    await d.client.registerInstance({id: 'keeper', pid: holder.pid})
    const before = await snapshot()
    const statuses: Record<string, number> = {}
    const problems: string[] = []
    let sent = 0
    let rssAfterWarmup = 0
    const worker = async () => {
      while (sent < total) {
        const n = sent++
        if (n === Math.floor(total / 10)) rssAfterWarmup = rssMb(d.pid)
        const via = rnd()
        const viaTcp = via < 0.3
        const req = generate(viaTcp ? tcpAuth : ['Host: localhost'], holder.pid!)
        const answer = await rawExchange(viaTcp ? tcp : unix, req.bytes, 15_000)
        const status = statusOf(answer)
        const code = errorCodeOf(answer)
        const key = `${status} ${code ?? ''}`.trim()
        statuses[key] = (statuses[key] ?? 0) + 1
        // A HEAD answer has no body to carry the code.
        const clear = req.method === 'HEAD' || (code !== undefined && KNOWN_CODES.has(code))
        const ok = status >= 400 && status < 500 ? clear : status >= 200 && status < 300 && !req.mutating
        if (!ok && problems.length < 10) problems.push(`${key} for ${req.bytes.subarray(0, 600).toString('latin1')}`)
      }
    }
    const rssBefore = rssMb(d.pid)
    await Promise.all(Array.from({length: 8}, worker))
    const rssAfter = rssMb(d.pid)
    expect(problems, problems.join('\n---\n')).to.deep.equal([])
    expect((await d.client.health()).pid).to.equal(d.pid)
    expect(await snapshot()).to.equal(before)
    expect(rssAfter - rssAfterWarmup, `RSS ${rssAfterWarmup} -> ${rssAfter} MB`).to.be.below(25)
    report('fuzz-http', {seed: SEED, requests: total, answers: statuses, crashes: 0, stateChanges: 0, rssMb: {start: rssBefore, afterWarmup: rssAfterWarmup, end: rssAfter}})
  })

  it('slow and idle connections are cut off (408) instead of pinning the daemon', async function () {
    this.timeout(30_000)
    const sock = path.join(d.home, 'daemon.sock')
    const t0 = Date.now()
    /** Resolves with [ms until the daemon closed it, what it said]. */
    const drip = (first: string, drop: string) => new Promise<[number, string]>((resolve) => {
      const s = net.connect(sock)
      let out = ''
      s.on('data', (c) => (out += c))
      s.write(first)
      const timer = setInterval(() => s.writable && s.write(drop), 500)
      const done = () => { clearInterval(timer); resolve([Date.now() - t0, out]) }
      s.on('close', done)
      s.on('error', () => undefined)
    })
    const [headers, body, idle] = await Promise.all([
      drip('GET /v1/health HTTP/1.1\r\nHost: localhost\r\n', 'X-Slow: 1\r\n'),
      drip('POST /v1/allocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{', ' '),
      drip('', ''),
    ])
    // headersTimeout 5 s and requestTimeout 10 s, checked every second.
    expect(headers[0]).to.be.within(4000, 8000)
    expect(statusOf(headers[1])).to.equal(408)
    expect(body[0]).to.be.within(9000, 13_000)
    expect(idle[0]).to.be.below(13_000)
    expect((await d.client.health()).pid).to.equal(d.pid)
    report('slow-requests', {slowHeadersClosedMs: headers[0], slowBodyClosedMs: body[0], idleClosedMs: idle[0]})
  })
})
