import {expect} from 'chai'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import WebSocket from 'ws'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'

interface Answer {
  status: number
  body: string
}

/** GET /v1/health with exactly these headers (the typed client would add its own). */
function get(d: TestDaemon, via: 'tcp' | 'unix', headers: Record<string, string>): Promise<Answer> {
  const target = via === 'tcp' ? {host: '127.0.0.1', port: d.port} : {socketPath: path.join(d.home, 'daemon.sock')}
  return new Promise((resolve, reject) => {
    const req = http.request({...target, path: '/v1/health', headers, agent: false}, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({status: res.statusCode!, body}))
    })
    req.on('error', reject)
    req.end()
  })
}

const tcpRequest = (d: TestDaemon, headers: Record<string, string>) => get(d, 'tcp', headers)
const unixRequest = (d: TestDaemon, headers: Record<string, string>) => get(d, 'unix', headers)

/** Resolve with the HTTP status the daemon refused an upgrade with, or 101 when it accepted. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {headers})
    ws.once('open', () => { ws.close(); resolve(101) })
    ws.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode!) })
    ws.once('error', () => resolve(-1))
  })
}

const codeOf = (a: Answer) => (JSON.parse(a.body) as {error: {code: string}}).error.code

describe('daemon security', () => {
  let d: TestDaemon
  let token: string
  let host: string

  before(async () => {
    d = await startDaemon()
    token = fs.readFileSync(path.join(d.home, 'token'), 'utf8').trim()
    host = `127.0.0.1:${d.port}`
  })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('TCP without a token, or with a wrong one, is refused with 401', async () => {
    const none = await tcpRequest(d, {host})
    expect([none.status, codeOf(none)]).to.deep.equal([401, 'UNAUTHORIZED'])
    const wrong = await tcpRequest(d, {host, authorization: `Bearer ${'0'.repeat(64)}`})
    expect([wrong.status, codeOf(wrong)]).to.deep.equal([401, 'UNAUTHORIZED'])
    const ok = await tcpRequest(d, {host, authorization: `Bearer ${token}`})
    expect(ok.status).to.equal(200)
  })

  it('requests from web pages (Origin or Referer) are refused on both transports, even with the token', async () => {
    const pages: Record<string, string>[] = [{origin: 'http://evil.example'}, {referer: 'http://evil.example/page'}, {origin: 'null'}]
    for (const h of pages) {
      const tcp = await tcpRequest(d, {host, authorization: `Bearer ${token}`, ...h})
      expect([tcp.status, codeOf(tcp)]).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
      const unix = await unixRequest(d, {host: 'localhost', ...h})
      expect([unix.status, codeOf(unix)]).to.deep.equal([403, 'FORBIDDEN_ORIGIN'])
    }
  })

  it('a foreign Host (DNS rebinding) is refused even with the token', async () => {
    for (const h of ['evil.example', `evil.example:${d.port}`, '127.0.0.1:80', `localhost.evil.example:${d.port}`]) {
      const a = await tcpRequest(d, {host: h, authorization: `Bearer ${token}`})
      expect([a.status, codeOf(a)], h).to.deep.equal([403, 'FORBIDDEN_HOST'])
    }
    for (const h of [`localhost:${d.port}`, `[::1]:${d.port}`]) {
      expect((await tcpRequest(d, {host: h, authorization: `Bearer ${token}`})).status, h).to.equal(200)
    }
  })

  it('WebSocket upgrades get the same refusals', async () => {
    const url = `ws://127.0.0.1:${d.port}/v1/events`
    expect(await upgradeStatus(url, {})).to.equal(401)
    expect(await upgradeStatus(url, {authorization: 'Bearer nope'})).to.equal(401)
    expect(await upgradeStatus(url, {authorization: `Bearer ${token}`, origin: 'http://evil.example'})).to.equal(403)
    expect(await upgradeStatus(url, {authorization: `Bearer ${token}`, host: 'evil.example'})).to.equal(403)
    expect(await upgradeStatus(`ws://127.0.0.1:${d.port}/v1/other`, {authorization: `Bearer ${token}`})).to.equal(404)
    expect(await upgradeStatus(url, {authorization: `Bearer ${token}`})).to.equal(101)
    const sock = path.join(d.home, 'daemon.sock')
    expect(await upgradeStatus(`ws+unix://${sock}:/v1/events`, {origin: 'http://evil.example'})).to.equal(403)
    expect(await upgradeStatus(`ws+unix://${sock}:/v1/events`, {})).to.equal(101)
  })

  it('a hostile upgrade path is refused, not a crash', async () => {
    const net = await import('node:net')
    for (const target of [{port: d.port, host: '127.0.0.1'}, {path: path.join(d.home, 'daemon.sock')}]) {
      const answer = await new Promise<string>((resolve) => {
        const s = net.connect(target as {port: number; host: string})
        let out = ''
        s.on('data', (c) => (out += c))
        s.on('close', () => resolve(out))
        s.on('error', () => resolve(out))
        s.end('GET //[ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
      })
      expect(answer).to.match(/^HTTP\/1.1 404/)
    }
    expect((await d.client.health()).pid).to.equal(d.pid)
  })

  it('TCP: no Host, a token in another scheme, with extra characters, or a prefix of it, is refused', async () => {
    const cases: [Record<string, string>, string][] = [
      [{host: `127.0.0.1:${d.port}.evil.example`, authorization: `Bearer ${token}`}, 'FORBIDDEN_HOST'],
      [{host: '127.0.0.1', authorization: `Bearer ${token}`}, 'FORBIDDEN_HOST'],
      [{host, authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}`}, 'UNAUTHORIZED'],
      [{host, authorization: `bearer${token}`}, 'UNAUTHORIZED'],
      [{host, authorization: `Bearer ${token}x`}, 'UNAUTHORIZED'],
      [{host, authorization: `Bearer ${token.slice(0, 32)}`}, 'UNAUTHORIZED'],
      [{host, authorization: 'Bearer '}, 'UNAUTHORIZED'],
      [{host, 'x-styxy-token': token}, 'UNAUTHORIZED'],
    ]
    for (const [headers, code] of cases) {
      const a = await tcpRequest(d, headers)
      expect([a.status, codeOf(a)], JSON.stringify(headers)).to.deep.equal([code === 'UNAUTHORIZED' ? 401 : 403, code])
    }
    // No Host at all (Node's client always sends one, so raw bytes).
    const {rawExchange, statusOf, errorCodeOf} = await import('../helpers/proof.js')
    const bare = await rawExchange({host: '127.0.0.1', port: d.port}, `GET /v1/health HTTP/1.1\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)
    expect([statusOf(bare), errorCodeOf(bare)]).to.deep.equal([403, 'FORBIDDEN_HOST'])
  })

  it('WebSocket upgrades with a Referer or a foreign Host are refused on both transports', async () => {
    const url = `ws://127.0.0.1:${d.port}/v1/events`
    const sock = path.join(d.home, 'daemon.sock')
    expect(await upgradeStatus(url, {authorization: `Bearer ${token}`, referer: 'http://evil.example/'})).to.equal(403)
    expect(await upgradeStatus(url, {authorization: `Bearer ${token}`, host: `localhost.evil.example:${d.port}`})).to.equal(403)
    expect(await upgradeStatus(url, {host: `127.0.0.1:${d.port}`})).to.equal(401)
    expect(await upgradeStatus(`ws+unix://${sock}:/v1/events`, {referer: 'http://evil.example/'})).to.equal(403)
  })

  it('another local user (nobody) can neither use the socket nor read the token or the database, even with the directory open', async function () {
    if (process.getuid?.() !== 0) this.skip() // needs root to act as another user
    const {spawn} = await import('node:child_process')
    // Prove each layer: first the 0700 directory, then (opened to 0711 for the test) the files' own modes.
    const attempt = () => new Promise<string>((resolve) => {
      const script = `
        const fs = require('fs'), net = require('net'), http = require('http'), home = ${JSON.stringify(d.home)}
        const out = {}
        const tryIt = (name, fn) => { try { fn(); out[name] = 'ok' } catch (e) { out[name] = e.code } }
        tryIt('token', () => fs.readFileSync(home + '/token'))
        tryIt('database', () => fs.readFileSync(home + '/styxy.db'))
        const s = net.connect(home + '/daemon.sock')
        s.on('connect', () => { out.socket = 'ok'; s.destroy(); tcp() })
        s.on('error', (e) => { out.socket = e.code; tcp() })
        // Without the token, TCP is all it has left.
        const tcp = () => http.get({host: '127.0.0.1', port: ${d.port}, path: '/v1/allocations', headers: {host: '127.0.0.1:${d.port}'}}, (r) => {
          out.tcp = r.statusCode; console.log(JSON.stringify(out)); process.exit(0)
        })`
      const c = spawn(process.execPath, ['-e', script], {uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit']})
      let text = ''
      c.stdout!.on('data', (x) => (text += x))
      c.on('exit', () => resolve(text.trim()))
    })
    expect(JSON.parse(await attempt())).to.deep.equal({token: 'EACCES', database: 'EACCES', socket: 'EACCES', tcp: 401})
    fs.chmodSync(d.home, 0o711)
    try {
      expect(JSON.parse(await attempt())).to.deep.equal({token: 'EACCES', database: 'EACCES', socket: 'EACCES', tcp: 401})
    } finally {
      fs.chmodSync(d.home, 0o700)
    }
  })

  it('the state directory, socket, token and database are private to the user', () => {
    const mode = (f: string) => fs.statSync(path.join(d.home, f)).mode & 0o777
    expect(mode('.')).to.equal(0o700)
    expect(mode('daemon.sock')).to.equal(0o600)
    expect(mode('token')).to.equal(0o600)
    expect(mode('styxy.db')).to.equal(0o600)
  })
})

describe('the token never goes to another user', () => {
  it("neither the CLI nor the interceptor sends it to another user's listener on the TCP port", async function () {
    if (process.getuid?.() !== 0) this.skip() // needs root to start a listener as another user
    const {spawn} = await import('node:child_process')
    const {freePort} = await import('../helpers/processes.js')
    const {removeHome, runCli, tempHome, isolatedEnv} = await import('../helpers/daemon.js')
    const {BINDPROBE, LIB} = await import('../helpers/programs.js')
    const home = tempHome()
    fs.chmodSync(home, 0o755)
    fs.writeFileSync(path.join(home, 'token'), 'a'.repeat(64) + '\n', {mode: 0o600})
    const port = await freePort()
    // A squatter running as nobody: prints every request it receives.
    const squatter = spawn('python3', ['-u', '-c', [
      'import socket, sys',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(("127.0.0.1", ${port})); s.listen(16); print("ready", flush=True)`,
      'while True:',
      '    c, _ = s.accept(); c.settimeout(1)',
      '    try: print(repr(c.recv(4096)), flush=True)',
      '    except Exception: pass',
      '    c.close()',
    ].join('\n')], {uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit']})
    let heard = ''
    await new Promise<void>((resolve) => squatter.stdout!.on('data', (c) => { heard += c; if (heard.includes('ready')) resolve() }))
    try {
      const env = isolatedEnv(home, port)
      // status: the one kind of command that does not start a daemon (docs/cli.md), so its request meets the squatter.
      const cli = await runCli(['status', '--json'], env)
      expect(cli.code).to.equal(1)
      expect(JSON.parse(cli.stdout).running).to.equal(false)
      const probePort = await freePort()
      const probe = await new Promise<string>((resolve) => {
        const p = spawn(BINDPROBE, ['--family', '4', String(probePort)], {env: {...env, LD_PRELOAD: LIB, STYXY_DEBUG: '1'}})
        let err = ''
        p.stderr.on('data', (c) => (err += c))
        p.on('exit', () => resolve(err))
      })
      expect(probe).to.contain('token withheld')
      expect(heard).to.not.contain('Bearer')
      // The interceptor connects before it checks the listener's owner (a refusal is cheaper to learn than
      // /proc/net/tcp), so the squatter may see a connection: never a byte on it.
      const received = heard.trim().split('\n').slice(1)
      expect(received.filter((line) => line !== "b''"), heard).to.deep.equal([])
    } finally {
      squatter.kill('SIGKILL')
      removeHome(home)
    }
  })
})
