// The names proxy and WebSocket upgrades that do not go to plan: a server that never answers one, one that
// answers with a stream that never ends, one that breaks after its 101. Whatever the client does, the daemon
// must not keep the server's side open after the client has gone, nor write into a stream it no longer owns.
import net from 'node:net'
import {expect} from 'chai'
import type {Lease} from '../../src/protocol/types.js'
import {removeHome, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {startProgram, type Program} from '../helpers/programs.js'

// The server logs each upgrade it receives and each of those sockets closing: its own account of what the
// proxy left open.
const SERVER = `
const http = require('http')
let n = 0
const s = http.createServer((q, r) => r.end('ok'))
s.on('upgrade', (q, sock) => {
  const id = ++n
  console.log('upgrade ' + id + ' ' + q.url)
  sock.on('error', () => {})
  sock.on('close', () => console.log('closed ' + id))
  // Read, and end when the peer ends, as a real server does (ws does both): a socket nobody reads never learns
  // that its peer has gone, and an upgraded socket is half-open until its owner ends it.
  sock.on('data', () => { if (q.url === '/break') sock.resetAndDestroy() })
  sock.on('end', () => sock.end())
  if (q.url === '/stream') sock.write('HTTP/1.1 200 OK\\r\\ncontent-type: text/event-stream\\r\\ntransfer-encoding: chunked\\r\\n\\r\\n5\\r\\nhello\\r\\n')
  if (q.url === '/break') {
    sock.write('HTTP/1.1 101 Switching Protocols\\r\\nupgrade: websocket\\r\\nconnection: Upgrade\\r\\n\\r\\n')
  }
  // /hang: never answered, as Vite leaves an upgrade that is not its HMR's
})
s.listen(+process.argv[1], '127.0.0.1', () => console.log('listening'))
`

interface RawClient {
  socket: net.Socket
  received: () => string
  closed: Promise<void>
  /** Resolves once `text` has arrived. */
  saw: (text: string) => Promise<void>
}

function upgradeThroughProxy(proxyPort: number, host: string, urlPath: string): RawClient {
  const socket = net.connect(proxyPort, '127.0.0.1')
  let got = ''
  const waiters: {text: string; resolve: () => void}[] = []
  socket.setEncoding('utf8')
  socket.on('data', (c: string) => {
    got += c
    for (const w of waiters.filter((x) => got.includes(x.text))) w.resolve()
  })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  return {
    socket, closed,
    received: () => got,
    saw: (text) => (got.includes(text) ? Promise.resolve() : new Promise((resolve) => waiters.push({text, resolve}))),
  }
}

/** `p`, or a failure saying `what` after `ms`: a leak shows as a close that never comes. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms) })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

describe('names proxy: WebSocket upgrades that do not go to plan', function () {
  this.timeout(60_000)
  let d: TestDaemon
  let proxyPort: number
  let lease: Lease
  let server: Program
  const host = () => `ws.localhost:${proxyPort}`

  before(async () => {
    d = await startDaemon()
    proxyPort = (await d.client.health()).proxyPort!
    lease = await d.client.allocate({service: 'dev', name: 'ws', pid: process.pid})
    server = startProgram(process.execPath, ['-e', SERVER, String(lease.port)], d.env, {preload: false})
    await server.waitFor(/listening/)
  })
  after(async () => {
    await server?.stop()
    await d.stop()
    removeHome(d.home)
  })

  it('a client that gives up on an upgrade the server never answers: the server\'s side is closed too', async () => {
    const c = upgradeThroughProxy(proxyPort, host(), '/hang')
    const id = (await server.waitFor(/upgrade (\d+) \/hang/))[1]
    c.socket.destroy()
    await within(server.waitFor(new RegExp(`closed ${id}\\b`)), 10_000, 'the proxy kept the server\'s side of an abandoned upgrade open')
  })

  it('a client that leaves an upgrade answered with an endless stream: the server\'s side is closed too', async () => {
    const c = upgradeThroughProxy(proxyPort, host(), '/stream')
    await c.saw('hello')
    const id = (await server.waitFor(/upgrade (\d+) \/stream/))[1]
    expect(c.received()).to.match(/^HTTP\/1\.1 200 OK/)
    c.socket.destroy()
    await within(server.waitFor(new RegExp(`closed ${id}\\b`)), 10_000, 'the proxy kept the server\'s side of an abandoned stream open')
  })

  it('a server that breaks after its 101: the client\'s socket is closed, with nothing written after the 101', async () => {
    const c = upgradeThroughProxy(proxyPort, host(), '/break')
    await c.saw('\r\n\r\n')
    expect(c.received()).to.match(/^HTTP\/1\.1 101 Switching Protocols\r\n/)
    c.socket.write('x') // the server resets its connection when this arrives
    await within(c.closed, 10_000, 'the client\'s socket stayed open after its server broke')
    // Everything the client got is the 101's header block: no error page inside the WebSocket stream.
    expect(c.received()).to.match(/\r\n\r\n$/).and.not.to.contain('502')
  })
})
