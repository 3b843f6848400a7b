import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf} from '../helpers/processes.js'
import {httpGet, NOTICE, noticeCount, startProgram, type Program} from '../helpers/programs.js'
import {nextEvent, opened} from '../helpers/events.js'

/**
 * A free port of a managed range, then a listener outside Styxy holding it: the "port already in use" every
 * test starts from (managed ranges sit below the ephemeral range, where outgoing connections come and go).
 */
async function heldPort(client: TestDaemon['client'], host = '127.0.0.1') {
  const server = await listenOn(host, (await client.suggest('hub', 1)).ports[0])
  return {port: portOf(server), release: () => closeServer(server)}
}

describe('interceptor: real servers with their port taken are moved', () => {
  let d: TestDaemon
  const programs: Program[] = []
  before(async () => { d = await startDaemon() })
  afterEach(async () => { await Promise.all(programs.splice(0).map((p) => p.stop())) })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('python3 -m http.server: serves on another port, notice once, audit line and event', async () => {
    const held = await heldPort(d.client)
    const ws = d.client.events()
    await opened(ws)
    const remapped = nextEvent(ws, (e) => e.type === 'bind.remapped' && e.data.requestedPort === held.port)
    const py = startProgram('python3', ['-u', '-m', 'http.server', String(held.port), '--bind', '127.0.0.1'], d.env)
    programs.push(py)
    const [, from, to] = await py.waitFor(NOTICE)
    expect(Number(from)).to.equal(held.port)
    const port = Number(to)
    expect(port).to.not.equal(held.port)
    await py.waitFor(/Serving HTTP/)
    expect((await httpGet(port)).status).to.equal(200)
    expect(noticeCount(py.stderr())).to.equal(1)
    const e = await remapped
    expect(e.type === 'bind.remapped' && e.data).to.include({pid: py.child.pid, to: port})
    const audit = fs.readFileSync(path.join(d.home, 'reassignments.log'), 'utf8')
    expect(audit).to.contain(`PID ${py.child.pid}: Port ${held.port} -> ${port}`)
    ws.close()
    await held.release()
  })

  it('node http on the default dual-stack address, its port held on [::1]: moved', async () => {
    const held = await heldPort(d.client, '::1')
    const script = `const s = require('http').createServer((q, r) => r.end('ok')); s.listen(${held.port}, () => console.log('port=' + s.address().port + ' addr=' + s.address().address))`
    const node = startProgram(process.execPath, ['-e', script], d.env)
    programs.push(node)
    const [, port, addr] = await node.waitFor(/port=(\d+) addr=(\S+)/)
    expect(addr).to.equal('::')
    expect(Number(port)).to.not.equal(held.port)
    expect((await httpGet(Number(port))).body).to.equal('ok')
    expect((await httpGet(Number(port), '::1')).body).to.equal('ok')
    expect(noticeCount(node.stderr())).to.equal(1)
    await held.release()
  })

  it('an asyncio server binding both families lands both on one new port', async () => {
    const held = await heldPort(d.client)
    const script = [
      'import asyncio, socket',
      'async def main():',
      '    async def h(r, w): await r.readuntil(b"\\r\\n\\r\\n"); w.write(b"HTTP/1.0 200 OK\\r\\n\\r\\nasyncio"); await w.drain(); w.close()',
      `    s = await asyncio.start_server(h, host=["0.0.0.0", "::"], port=${held.port})`,
      '    print("ports", sorted({(x.family.name, x.getsockname()[1]) for x in s.sockets}), flush=True)',
      '    await s.serve_forever()',
      'asyncio.run(main())',
    ].join('\n')
    const py = startProgram('python3', ['-c', script], d.env)
    programs.push(py)
    const [line] = await py.waitFor(/ports \[.*\]/)
    const ports = [...line.matchAll(/'AF_INET6?', (\d+)/g)].map((m) => Number(m[1]))
    expect(ports).to.have.length(2)
    expect(ports[0]).to.equal(ports[1])
    expect(ports[0]).to.not.equal(held.port)
    expect((await httpGet(ports[0])).body).to.equal('asyncio')
    expect(noticeCount(py.stderr())).to.equal(1)
    await held.release()
  })

  it('a port leased by POST /v1/allocations but not bound yet moves another program', async () => {
    const lease = await d.client.allocate({service: 'docs'})
    const py = startProgram('python3', ['-u', '-m', 'http.server', String(lease.port), '--bind', '127.0.0.1'], d.env)
    programs.push(py)
    const [, from, to] = await py.waitFor(NOTICE)
    expect(Number(from)).to.equal(lease.port)
    expect(Number(to)).to.not.equal(lease.port)
    await py.waitFor(/Serving HTTP/)
    expect((await httpGet(Number(to))).status).to.equal(200)
    await d.client.release(lease.id)
  })
})
