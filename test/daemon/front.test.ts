import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, portOf, spawnHolder} from '../helpers/processes.js'
import {probe} from '../helpers/programs.js'
import {errorCodeOf, interceptorRequest, rawExchange, statusOf, within} from '../helpers/proof.js'

const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function frontOf(d: TestDaemon) {
  const front = (await d.client.status()).front
  expect(front, 'the daemon runs a front').to.not.equal(null)
  return front!
}

describe('the native front', () => {
  let d: TestDaemon
  const holder = spawnHolder()
  const front = () => ({path: path.join(d.home, 'daemon.sock.bind')})
  const daemonSocket = () => ({path: path.join(d.home, 'daemon.sock')})
  const ask = (port: number, extra: object = {}) => JSON.stringify({pid: holder.pid, port, family: 'ipv4', address: '127.0.0.1', ...extra})

  before(async () => { d = await startDaemon() })
  after(async () => {
    await killAll([holder])
    await d.stop()
    removeHome(d.home)
  })

  it('answers the interceptor\'s request with the daemon\'s decision, and counts it', async () => {
    const before = (await frontOf(d)).answered
    const viaFront = await rawExchange(front(), interceptorRequest(ask(3400, {command: 'vite'})), 5000, 200)
    expect(statusOf(viaFront), viaFront).to.equal(200)
    const first = bodyOf(viaFront)
    expect(first).to.include({action: 'allow', port: 3400, service: 'dev', repeat: false, newLease: true})
    // The daemon's own socket knows that lease: the same holder asking there again is a repeat of it.
    const viaDaemon = await rawExchange(daemonSocket(), interceptorRequest(ask(3400, {command: 'vite'})), 5000, 200)
    expect(bodyOf(viaDaemon)).to.deep.equal({...first, repeat: true, newLease: false})
    expect((await d.client.leases()).filter((l) => l.port === 3400)).to.have.length(1)
    expect((await frontOf(d)).answered).to.equal(before + 1)
  })

  it('refuses anything but that request with a clear error, and changes nothing', async () => {
    const gone = spawnHolder()
    await killAll([gone])
    const leases = await d.client.leases()
    const cases: [string, string, number, string][] = [
      ['an Origin', interceptorRequest(ask(3401), 'Origin: http://evil.example\r\n'), 400, 'BAD_REQUEST'],
      ['a Referer', interceptorRequest(ask(3401), 'Referer: http://evil.example/\r\n'), 400, 'BAD_REQUEST'],
      ['another route', 'GET /v1/allocations HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', 400, 'BAD_REQUEST'],
      ['JSON that does not parse', interceptorRequest('{"pid":'), 400, 'BAD_REQUEST'],
      ['a body that does not validate', interceptorRequest(ask(70000)), 422, 'VALIDATION_FAILED'],
      ['a holder that is not running', interceptorRequest(JSON.stringify({pid: gone.pid, port: 3401, family: 'ipv4', address: '127.0.0.1'})), 422, 'HOLDER_NOT_RUNNING'],
      // These the front refuses itself: it forwards nothing it cannot frame whole.
      ['a Content-Length that is not a number', interceptorRequest(ask(3401)).replace(/Content-Length: \d+/, 'Content-Length: 1e2'), 400, 'BAD_REQUEST'],
      ['a request over 8 KB', interceptorRequest(ask(3401, {command: 'x'.repeat(9000)})), 413, 'PAYLOAD_TOO_LARGE'],
      ['headers over 8 KB', interceptorRequest(ask(3401), `User-Agent: ${'a'.repeat(9000)}\r\n`), 431, 'HEADERS_TOO_LARGE'],
      ['bytes that are not HTTP', '\x16\x03\x01\x02\x00', 400, 'BAD_REQUEST'],
      // rawExchange half-closes after 200 ms of silence: the front then answers what it has.
      ['a request cut short', interceptorRequest(ask(3401)).slice(0, 40), 400, 'BAD_REQUEST'],
    ]
    for (const [what, bytes, status, code] of cases) {
      const answer = await rawExchange(front(), bytes, 5000, 200)
      expect(statusOf(answer), `${what}: ${answer}`).to.equal(status)
      expect(errorCodeOf(answer), what).to.equal(code)
    }
    expect(await d.client.leases()).to.deep.equal(leases)
  })

  it('waits for a request sent in pieces, and serves others while a client sends nothing', async () => {
    const idle = net.connect(front())
    const idleClosed = new Promise<void>((resolve) => idle.on('close', () => resolve()))
    idle.on('error', () => {})
    const [head, body] = interceptorRequest(ask(3402)).split('\r\n\r\n')
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(front())
      let out = ''
      s.on('data', (c) => (out += c))
      s.on('close', () => resolve(out))
      s.on('error', reject)
      // The body well after the headers, so the front reads them alone and must wait for the rest.
      s.write(`${head}\r\n\r\n`, () => setTimeout(() => s.write(body), 200))
    })
    expect(statusOf(answer), answer).to.equal(200)
    expect(bodyOf(answer)).to.include({action: 'allow', port: 3402})
    // A client that never sends its request does not keep its connection (the front's idle bound is 5 s).
    const t0 = Date.now()
    await idleClosed
    expect(Date.now() - t0).to.be.below(7000)
  })

  it('answers a whole request whose client half-closes at once', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect({...front(), allowHalfOpen: true})
      let out = ''
      s.on('data', (c) => (out += c))
      s.on('close', () => resolve(out))
      s.on('error', reject)
      s.end(interceptorRequest(ask(3405)))
    })
    expect(statusOf(answer), answer).to.equal(200)
    expect(bodyOf(answer)).to.include({action: 'allow', port: 3405})
  })

  it('its socket is private: 0600 in a 0700 directory', () => {
    expect(fs.statSync(front().path).mode & 0o777).to.equal(0o600)
    expect(fs.statSync(d.home).mode & 0o777).to.equal(0o700)
  })

  it('a front that dies is started again, and binds keep working meanwhile', async () => {
    const old = await frontOf(d)
    process.kill(old.pid!, 'SIGKILL')
    const held = await listenOn('127.0.0.1', (await d.client.suggest('test', 1)).ports[0])
    try {
      // Whether the front is still down or back, a taken port moves.
      const r = await probe(['--family', '4', String(portOf(held))], d.env)
      expect(r.code).to.equal(0)
      expect(r.bound[0].actual).to.not.equal(portOf(held))
    } finally {
      await closeServer(held)
    }
    await within(5000, async () => {
      const now = (await d.client.status()).front
      return now !== null && now.pid !== null && now.pid !== old.pid && now.restarts === old.restarts + 1
    }, 'a new front')
    expect(alive(old.pid!)).to.equal(false)
    const answer = await rawExchange(front(), interceptorRequest(ask(3403)), 5000, 200)
    expect(bodyOf(answer)).to.include({action: 'allow', port: 3403})
  })
})

describe('the native front\'s life with its daemon', () => {
  it('goes with its daemon (kill -9 included), and the next daemon starts its own', async () => {
    const d = await startDaemon()
    try {
      const first = (await frontOf(d)).pid!
      const socket = path.join(d.home, 'daemon.sock.bind')
      await d.kill9()
      // The link's end tells the front; it removes its socket, which is still its own.
      await within(3000, () => !alive(first) && !fs.existsSync(socket), 'the front gone with its socket')
      const again = await startDaemon({home: d.home})
      try {
        const second = await frontOf(again)
        expect(second.pid).to.not.equal(first)
        expect(fs.existsSync(socket)).to.equal(true)
        await again.stop()
        await within(3000, () => !alive(second.pid!) && !fs.existsSync(socket), 'the front stopped with its daemon')
      } finally {
        await again.stop()
      }
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })

  it('replaces a stale socket file left where it listens', async () => {
    const d0 = await startDaemon()
    const home = d0.home
    await d0.stop()
    // A socket file nobody listens on, as a front killed with its daemon would leave (Python's socket keeps
    // its file when the process exits; Node's server would unlink it on close).
    const stalePath = path.join(home, 'daemon.sock.bind')
    const made = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stalePath])
    expect(made.status, String(made.stderr)).to.equal(0)
    expect(fs.statSync(stalePath).isSocket()).to.equal(true)
    const d = await startDaemon({home})
    try {
      expect((await frontOf(d)).pid).to.be.a('number')
      const holder = spawnHolder()
      try {
        const answer = await rawExchange({path: path.join(home, 'daemon.sock.bind')}, interceptorRequest(JSON.stringify({pid: holder.pid, port: 3404, family: 'ipv4', address: '127.0.0.1'})), 5000, 200)
        expect(statusOf(answer), answer).to.equal(200)
      } finally {
        await killAll([holder])
      }
    } finally {
      await d.stop()
      removeHome(home)
    }
  })

  it('a front that stops answering (SIGSTOP) is replaced; binds meanwhile go to the daemon\'s socket in time', async () => {
    const d = await startDaemon({env: {STYXY_FRONT_PING_MS: '100'}})
    const held = await listenOn('127.0.0.1', (await d.client.suggest('test', 1)).ports[0])
    const stopped = (await frontOf(d)).pid!
    try {
      process.kill(stopped, 'SIGSTOP')
      // Its socket still accepts (the kernel queues the connection): the interceptor gives it half its bound.
      const t0 = Date.now()
      const r = await probe(['--family', '4', String(portOf(held))], d.env)
      expect(r.code).to.equal(0)
      expect(r.bound[0].actual).to.not.equal(portOf(held))
      expect(Date.now() - t0).to.be.below(2000)
      await within(5000, async () => {
        const now = (await d.client.status()).front
        return now !== null && now.pid !== null && now.pid !== stopped
      }, 'a new front')
      expect(alive(stopped)).to.equal(false)
      expect(d.output()).to.contain('no answer to a ping')
    } finally {
      if (alive(stopped)) process.kill(stopped, 'SIGKILL')
      await closeServer(held)
      await d.stop()
      removeHome(d.home)
    }
  })

  it('STYXY_FRONT=off: no front, and the interceptor binds through the daemon\'s socket', async () => {
    const d = await startDaemon({env: {STYXY_FRONT: 'off'}})
    const held = await listenOn('127.0.0.1', (await d.client.suggest('test', 1)).ports[0])
    try {
      expect((await d.client.status()).front).to.equal(null)
      expect(fs.existsSync(path.join(d.home, 'daemon.sock.bind'))).to.equal(false)
      const r = await probe(['--family', '4', String(portOf(held))], d.env)
      expect(r.code).to.equal(0)
      expect(r.bound[0].actual).to.not.equal(portOf(held))
      expect((await d.client.reassignments()).map((x) => x.from)).to.include(portOf(held))
    } finally {
      await closeServer(held)
      await d.stop()
      removeHome(d.home)
    }
  })
})
