import {expect} from 'chai'
import net from 'node:net'
import path from 'node:path'
import {StyxyClient, TransportError, ApiError} from '../../src/client/client.js'
import {parseAnswer} from '../../src/client/transport.js'
import {removeHome, startDaemon, tempHome} from '../helpers/daemon.js'

/** A peer on a Unix socket that answers every connection with `reply` (raw bytes), or never when null. */
async function peer(reply: ((request: string) => string) | null): Promise<{file: string; requests: string[]; close(): void}> {
  const home = tempHome('styxy-peer-')
  const file = path.join(home, 'peer.sock')
  const requests: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    let text = ''
    s.on('data', (c) => {
      text += c
      if (!text.includes('\r\n\r\n')) return
      requests.push(text)
      if (reply) s.end(reply(text))
    })
    s.on('error', () => undefined)
  })
  await new Promise<void>((r) => server.listen(file, r))
  return {file, requests, close: () => { for (const s of sockets) s.destroy(); server.close(); removeHome(home) }}
}

const clientOn = (file: string, timeoutMs = 2000) =>
  new StyxyClient({endpoint: {socket: file, host: '127.0.0.1', port: 1, tokenFile: '/nonexistent', only: 'unix'}, timeoutMs})

describe('client transport: HTTP/1.1 over a plain socket', () => {
  it('reads a Content-Length answer, and a chunked one, split across reads', () => {
    const plain = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"éz"}')
    expect(parseAnswer(plain.subarray(0, 20), false)).to.deep.equal({total: 0})
    expect(parseAnswer(plain.subarray(0, plain.length - 1), false)).to.deep.equal({total: plain.length})
    expect(parseAnswer(plain, false)).to.deep.equal({status: 200, body: '{"a":"éz"}'})
    const chunked = Buffer.from('HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"b"\r\n3\r\n:1}\r\n0\r\n\r\n')
    expect(parseAnswer(chunked.subarray(0, chunked.length - 7), false)).to.deep.equal({total: 0})
    expect(parseAnswer(chunked, false)).to.deep.equal({status: 404, body: '{"b":1}'})
  })

  it('refuses garbage, a cut answer and a bad length with BAD_RESPONSE', () => {
    const bad = (text: string, ended = true) => {
      try {
        parseAnswer(Buffer.from(text), ended)
      } catch (error) {
        return (error as TransportError).code
      }
      return 'parsed'
    }
    expect(bad('SSH-2.0-OpenSSH\r\n\r\n')).to.equal('BAD_RESPONSE')
    expect(bad('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}')).to.equal('BAD_RESPONSE')
    expect(bad('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', false)).to.equal('BAD_RESPONSE')
    expect(bad('HTTP/1.1 200 OK\r\nContent-')).to.equal('BAD_RESPONSE')
    expect(bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', false)).to.equal('BAD_RESPONSE')
    expect(bad('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-6\r\n', false)).to.equal('BAD_RESPONSE')
  })

  it('a peer that closes without a byte is a reset: the client falls back to TCP, else says the daemon is not running', async () => {
    const p = await peer(() => '')
    try {
      const err = await new StyxyClient({endpoint: {socket: p.file, host: '127.0.0.1', port: 1, tokenFile: '/nonexistent'}, timeoutMs: 2000})
        .health().catch((e: unknown) => e)
      expect((err as TransportError).code).to.equal('DAEMON_NOT_RUNNING')
    } finally {
      p.close()
    }
  })

  it('talks to the real daemon on both transports: answers, API errors with their code', async () => {
    const d = await startDaemon()
    try {
      for (const only of ['unix', 'tcp'] as const) {
        const c = new StyxyClient({endpoint: {...d.client.endpoint, only}})
        expect((await c.health()).pid).to.equal(d.pid)
        const err = await c.suggest('nope-not-a-type', 0).catch((e: unknown) => e)
        expect(err).to.be.instanceOf(ApiError)
        expect((err as ApiError).code).to.equal('VALIDATION_FAILED')
        expect((await c.raw('GET', '/v1/nowhere')).status).to.equal(404)
      }
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })

  it('a large answer arriving in many reads comes out whole', async () => {
    const items = Array.from({length: 20000}, (_, i) => ({port: 20000 + i, id: `l-${20000 + i}-0123abcd`, command: 'é'.repeat(40)}))
    const body = JSON.stringify(items)
    const p = await peer(() => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    try {
      const res = await clientOn(p.file).raw('GET', '/v1/allocations')
      expect(Buffer.byteLength(res.body)).to.be.above(2_000_000)
      expect(JSON.parse(res.body)).to.deep.equal(items)
    } finally {
      p.close()
    }
  })

  it('a peer that accepts and never answers: DAEMON_TIMEOUT within the bound', async () => {
    const p = await peer(null)
    try {
      const t0 = Date.now()
      const err = await clientOn(p.file, 300).health().catch((e: unknown) => e)
      expect((err as TransportError).code).to.equal('DAEMON_TIMEOUT')
      expect(Date.now() - t0).to.be.within(250, 2000)
    } finally {
      p.close()
    }
  })

  it('a peer that answers garbage: BAD_RESPONSE, not a hang', async () => {
    const p = await peer(() => 'hello there\r\n\r\n')
    try {
      expect(((await clientOn(p.file).health().catch((e: unknown) => e)) as TransportError).code).to.equal('BAD_RESPONSE')
    } finally {
      p.close()
    }
  })

  it('never lets a method, path or header inject into the request', async () => {
    const p = await peer(() => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')
    try {
      const c = clientOn(p.file)
      for (const [method, where] of [['GET', '/v1/x HTTP/1.1\r\nX-Evil: 1'], ['GET\r\nX', '/v1/x'], ['GET', 'v1/x'], ['GET', '/v1/a b']]) {
        expect(await c.raw(method, where).then(() => 'sent', (e: Error) => e.name)).to.equal('TypeError')
      }
      expect(p.requests).to.have.length(0)
      expect((await c.raw('POST', '/v1/ok?x=1', {a: 1})).status).to.equal(200)
      expect(p.requests[0]).to.match(/^POST \/v1\/ok\?x=1 HTTP\/1\.1\r\nconnection: close\r\n/)
      expect(p.requests[0]).to.contain('content-length: 7\r\n')
    } finally {
      p.close()
    }
  })
})
