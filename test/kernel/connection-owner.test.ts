// Whose end of a TCP connection is it: asked of the kernel exactly (the addon's connection lookup), and read
// from /proc/net/tcp{,6} where the addon cannot ask. The dashboard answers only connections of its own user.
import {expect} from 'chai'
import net from 'node:net'
import {decodeSockets} from '../../src/kernel/decode.js'
import {loadKernelAddon} from '../../src/kernel/native.js'
import {DiagTables, ProcTables, type KernelTables} from '../../src/kernel/tables.js'

interface Pair {client: net.Socket; accepted: net.Socket; server: net.Server}

async function connectPair(listenHost: string, connectHost: string): Promise<Pair> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, listenHost, () => resolve())
  })
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve))
  const client = net.connect((server.address() as net.AddressInfo).port, connectHost)
  await new Promise((resolve) => client.once('connect', resolve))
  return {client, accepted: await accepted, server}
}

describe('the owner of a connection, as the daemon sees it from its accepted end', () => {
  const addon = loadKernelAddon().addon
  const ways: [string, () => KernelTables][] = [
    ['sock_diag', () => new DiagTables(addon!, decodeSockets)],
    ['/proc/net/tcp', () => new ProcTables('asked in a test')],
  ]
  // The last: a dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1, and the client's socket is IPv4.
  const routes: [string, string][] = [['127.0.0.1', '127.0.0.1'], ['::1', '::1'], ['::', '127.0.0.1']]
  for (const [way, tables] of ways) {
    for (const [listenHost, connectHost] of routes) {
      it(`${way}, listening on ${listenHost}, a client on ${connectHost}: this user's; a connection that is not there: null`, async () => {
        expect(addon, 'the kernel addon loads').to.not.equal(null)
        const p = await connectPair(listenHost, connectHost)
        try {
          const t = tables()
          const client = {address: p.accepted.remoteAddress!, port: p.accepted.remotePort!}
          const server = {address: p.accepted.localAddress!, port: p.accepted.localPort!}
          if (listenHost === '::') expect(client.address).to.equal('::ffff:127.0.0.1')
          expect(t.connectionOwner(client, server)).to.equal(process.geteuid!())
          // The same client port to another server port, or another client port: no such connection.
          expect(t.connectionOwner(client, {...server, port: server.port === 65535 ? 1 : server.port + 1})).to.equal(null)
          expect(t.connectionOwner({...client, port: client.port === 65535 ? 1 : client.port + 1}, server)).to.equal(null)
        } finally {
          p.client.destroy()
          p.accepted.destroy()
          await new Promise((resolve) => p.server.close(resolve))
        }
      })
    }
  }
})
