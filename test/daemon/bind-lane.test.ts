import {expect} from 'chai'
import net from 'node:net'
import path from 'node:path'
import {laneRequest} from '../../src/daemon/bind-lane.js'
import {encode, jsonHeaders} from '../../src/client/transport.js'
import {Routes} from '../../src/protocol/routes.js'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {errorCodeOf, interceptorRequest, rawExchange, statusOf} from '../helpers/proof.js'

const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
// node:http always sends a Date header; the lane never does. That is how a test tells who answered.
const byApp = (answer: string) => /\r\ndate: /i.test(answer.slice(0, answer.indexOf('\r\n\r\n')))

describe('the bind lane: what it takes from the app and what it leaves', () => {
  const ask = JSON.stringify({pid: 4242, port: 3000, family: 'ipv4', address: '127.0.0.1'})

  it('takes the interceptor request and the typed client request, and reads their body', () => {
    expect(laneRequest(Buffer.from(interceptorRequest(ask)))).to.deep.equal({route: 'bind', body: JSON.parse(ask)})
    const client = `POST /v1/bind HTTP/1.1\r\nconnection: close\r\nhost: localhost\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${ask.length}\r\n\r\n${ask}`
    expect(laneRequest(Buffer.from(client))).to.deep.equal({route: 'bind', body: JSON.parse(ask)})
  })

  it('takes both requests exactly as the typed client frames them', () => {
    const framed = (route: 'bind' | 'exitWatch', body: string) => encode(Routes[route].method, Routes[route].path, jsonHeaders(body), body)
    expect(laneRequest(framed('bind', ask))).to.deep.equal({route: 'bind', body: JSON.parse(ask)})
    const watch = JSON.stringify({pid: 4242, leaseId: 'l-3000-x'})
    expect(laneRequest(framed('exitWatch', watch))).to.deep.equal({route: 'exitWatch', body: JSON.parse(watch)})
    expect(laneRequest(Buffer.from(framed('exitWatch', watch).toString('latin1').replace('/v1/exit-watch', '/v1/exit-watch/'), 'latin1'))).to.equal(undefined)
  })

  it('reads whatever follows the interceptor\'s own head as it reads any other request', () => {
    // The interceptor's head, byte for byte up to its Content-Length, is compared whole (a shortcut): a header
    // after it, or a value that is not bare digits, must get the full reading, never the shortcut's verdict.
    const after = (extra: string) => Buffer.from(interceptorRequest(ask).replace(`Content-Length: ${ask.length}\r\n`, `Content-Length: ${ask.length}${extra}\r\n`), 'latin1')
    expect(laneRequest(after('\r\nUser-Agent: probe'))).to.deep.equal({route: 'bind', body: JSON.parse(ask)})
    expect(laneRequest(after(' \t'))).to.deep.equal({route: 'bind', body: JSON.parse(ask)})
    expect(laneRequest(after('\r\nOrigin: http://evil.example'))).to.equal(undefined)
    expect(laneRequest(after(`\r\nContent-Length: ${ask.length}`))).to.equal(undefined)
    expect(laneRequest(after('\r\nConnection: keep-alive'))).to.equal(undefined)
    expect(laneRequest(after('0'))).to.equal(undefined)
  })

  const leftToApp: [string, string][] = [
    ['another route', interceptorRequest(ask).replace('/v1/bind', '/v1/allocations')],
    ['a query string', interceptorRequest(ask).replace('/v1/bind', '/v1/bind?x=1')],
    ['HTTP/1.0', interceptorRequest(ask).replace('HTTP/1.1', 'HTTP/1.0')],
    ['keep-alive', interceptorRequest(ask).replace('Connection: close', 'Connection: keep-alive')],
    ['no Connection header', interceptorRequest(ask).replace('Connection: close\r\n', '')],
    ['an Origin', interceptorRequest(ask, 'Origin: http://evil.example\r\n')],
    ['a Referer', interceptorRequest(ask, 'Referer: http://evil.example/\r\n')],
    ['an unknown header', interceptorRequest(ask, 'X-Anything: 1\r\n')],
    ['a duplicate Content-Length', interceptorRequest(ask, `Content-Length: ${ask.length}\r\n`)],
    ['chunked', interceptorRequest(ask, 'Transfer-Encoding: chunked\r\n')],
    ['a folded header line', interceptorRequest(ask, 'Host: a\r\n b\r\n'.replace('Host', 'User-Agent'))],
    ['a control character in a value', interceptorRequest(ask, 'User-Agent: a\x01b\r\n')],
    ['a header without a colon', interceptorRequest(ask, 'User-Agent\r\n')],
    ['another content type', interceptorRequest(ask).replace('application/json', 'text/plain')],
    // Valid JSON either way, so only the length check can refuse these.
    ['a body shorter than declared', interceptorRequest(ask).replace(`Content-Length: ${ask.length}`, `Content-Length: ${ask.length + 2}`)],
    ['bytes after the body (pipelining)', `${interceptorRequest(ask)}  `],
    ['a space before a colon', interceptorRequest(ask, 'User-Agent : x\r\n')],
    ['bare LF line endings', interceptorRequest(ask).replace(/\r\n(?!\r\n)/g, '\n').replace('POST /v1/bind HTTP/1.1\n', 'POST /v1/bind HTTP/1.1\r\n')],
    ['a signed Content-Length', interceptorRequest(ask).replace(`Content-Length: ${ask.length}`, `Content-Length: +${ask.length}`)],
    ['Transfer-Encoding in another case', interceptorRequest(ask, 'transfer-ENCODING: chunked\r\n')],
    ['a NUL in a value', interceptorRequest(ask, 'User-Agent: a\0b\r\n')],
    ['no end of headers yet', interceptorRequest(ask).split('\r\n\r\n')[0]],
    ['JSON that does not parse', interceptorRequest('{"pid":')],
    ['a JSON array', interceptorRequest('[1,2]')],
    ['a JSON string', interceptorRequest('"x"')],
    ['a request over 16 KB', interceptorRequest(JSON.stringify({pid: 1, port: 3000, family: 'ipv4', address: '127.0.0.1', command: 'x'.repeat(17_000)}))],
  ]
  for (const [what, bytes] of leftToApp) {
    it(`leaves to the app: ${what}`, () => {
      expect(laneRequest(Buffer.from(bytes, 'latin1'))).to.equal(undefined)
    })
  }
})

describe('the bind lane on a real daemon', () => {
  let d: TestDaemon
  const holder = spawnHolder()
  const sock = () => ({path: path.join(d.home, 'daemon.sock')})

  before(async () => { d = await startDaemon() })
  after(async () => {
    await killAll([holder])
    await d.stop()
    removeHome(d.home)
  })

  it('answers the interceptor request itself, as the app answers the same ask', async () => {
    const ask = JSON.stringify({pid: holder.pid, port: 3300, family: 'ipv4', address: '127.0.0.1', command: 'vite'})
    const lane = await rawExchange(sock(), interceptorRequest(ask), 5000, 200)
    const app = await rawExchange(sock(), interceptorRequest(ask, 'X-Via: app\r\n'), 5000, 200)
    expect(statusOf(lane)).to.equal(200)
    expect(byApp(lane), lane).to.equal(false)
    expect(statusOf(app)).to.equal(200)
    expect(byApp(app), app).to.equal(true)
    const first = bodyOf(lane)
    expect(first).to.include({action: 'allow', port: 3300, requestedPort: 3300, service: 'dev', repeat: false, newLease: true})
    // The app sees the lane's lease: the same holder asking again is a repeat of it.
    expect(bodyOf(app)).to.deep.equal({...first, repeat: true, newLease: false})
    expect((await d.client.leases()).filter((l) => l.port === 3300)).to.have.length(1)
  })

  it('closes the connection once it has answered, even when the client keeps its own side open', async () => {
    const ask = JSON.stringify({pid: holder.pid, port: 3305, family: 'ipv4', address: '127.0.0.1'})
    const s = net.connect({...sock(), allowHalfOpen: true})
    let out = ''
    s.on('data', (c) => (out += c))
    s.write(interceptorRequest(ask))
    await new Promise((resolve) => s.once('end', resolve))
    expect(statusOf(out)).to.equal(200)
    expect(byApp(out)).to.equal(false)
    // Half-closed by the daemon is not enough: a client that never closes (stopped, or a fork holding the fd)
    // would pin the daemon's fd. Once the daemon has closed its socket too, our writes fail.
    const refused = await new Promise<string>((resolve) => {
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
      const poke = () => { if (!s.destroyed) s.write('x', (e) => (e ? undefined : setTimeout(poke, 20))) }
      poke()
      setTimeout(() => resolve('still open after 3 s'), 3000).unref()
    })
    s.destroy()
    expect(refused).to.be.oneOf(['EPIPE', 'ECONNRESET'])
  })

  it('a holder that is not running gets the app\'s error from the lane, and nothing is leased', async () => {
    const gone = spawnHolder()
    await killAll([gone])
    const before = await d.client.leases()
    const answer = await rawExchange(sock(), interceptorRequest(JSON.stringify({pid: gone.pid, port: 3301, family: 'ipv4', address: '127.0.0.1'})), 5000, 200)
    expect(byApp(answer)).to.equal(false)
    expect(statusOf(answer)).to.equal(422)
    expect(errorCodeOf(answer)).to.equal('HOLDER_NOT_RUNNING')
    expect(await d.client.leases()).to.deep.equal(before)
  })

  it('refusals in the interceptor\'s shape still come from the app, and change nothing', async () => {
    const before = await d.client.leases()
    const ask = JSON.stringify({pid: holder.pid, port: 3302, family: 'ipv4', address: '127.0.0.1'})
    const cases: [string, number, string][] = [
      [interceptorRequest(ask, 'Origin: http://evil.example\r\n'), 403, 'FORBIDDEN_ORIGIN'],
      [interceptorRequest(ask, 'Referer: http://evil.example/\r\n'), 403, 'FORBIDDEN_ORIGIN'],
      [interceptorRequest('{"pid":'), 400, 'INVALID_JSON'],
      [interceptorRequest(JSON.stringify({pid: holder.pid, port: 70000, family: 'ipv4', address: 'x'})), 422, 'VALIDATION_FAILED'],
      [interceptorRequest(JSON.stringify({pid: holder.pid, port: 3302, family: 'ipv4', address: 'x', extra: 1})), 422, 'VALIDATION_FAILED'],
    ]
    for (const [bytes, status, code] of cases) {
      const answer = await rawExchange(sock(), bytes, 5000, 200)
      expect(statusOf(answer), answer).to.equal(status)
      expect(errorCodeOf(answer)).to.equal(code)
      expect(byApp(answer)).to.equal(true)
    }
    expect(await d.client.leases()).to.deep.equal(before)
  })

  it('a request the app gets after the lane read part of it arrives whole and in order', async () => {
    const ask = JSON.stringify({pid: holder.pid, port: 3303, family: 'ipv4', address: '127.0.0.1'})
    const [head, body] = interceptorRequest(ask).split('\r\n\r\n')
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(sock())
      let out = ''
      s.on('data', (c) => {
        out += c
      })
      s.on('close', () => resolve(out))
      s.on('error', reject)
      // The body follows well after the headers, so the daemon reads them alone: the lane must hand over a
      // connection it has already read from, and the app must still see the request whole.
      s.write(`${head}\r\n\r\n`, () => setTimeout(() => s.write(body), 300))
    })
    expect(statusOf(answer), answer).to.equal(200)
    expect(byApp(answer)).to.equal(true)
    expect(bodyOf(answer)).to.include({action: 'allow', port: 3303})
  })

  it('two pipelined requests on one connection both reach the app, in order', async () => {
    const ask = JSON.stringify({pid: holder.pid, port: 3304, family: 'ipv4', address: '127.0.0.1'})
    const first = interceptorRequest(ask).replace('Connection: close', 'Connection: keep-alive')
    const answer = await rawExchange(sock(), `${first}GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 5000, 500)
    const answers = answer.split(/(?=HTTP\/1\.1 )/)
    expect(answers.map(statusOf)).to.deep.equal([200, 200])
    expect(bodyOf(answers[0])).to.include({action: 'allow', port: 3304})
    expect(bodyOf(answers[1])).to.include({pid: d.pid})
  })
})
