import {expect} from 'chai'
import net from 'node:net'
import path from 'node:path'
import {startDaemon, removeHome, tempHome, isolatedEnv, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf, freePort} from '../helpers/processes.js'
import {BINDPROBE, NOTICE_ALONE as ALONE, noticeCount, probe, startProgram, type Program} from '../helpers/programs.js'

/**
 * Hold a port of a managed range (below the kernel's ephemeral range, where outgoing connections would
 * make neighbouring ports randomly busy) with a listener Styxy does not know about.
 */
async function heldIn(host = '127.0.0.1', client?: TestDaemon['client']) {
  const port = client ? (await client.suggest('test', 1)).ports[0] : 0
  const server = await listenOn(host, port)
  return {port: portOf(server), release: () => closeServer(server)}
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({host: '127.0.0.1', port}, () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  })
}

describe('interceptor: behaviour with a real daemon', () => {
  let d: TestDaemon
  const held = (host = '127.0.0.1') => heldIn(host, d.client)
  before(async () => { d = await startDaemon() })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('a taken port moves, errno is what the caller had, one notice', async () => {
    const h = await held()
    const r = await probe(['--family', '4', String(h.port)], d.env)
    expect(r.code).to.equal(0)
    expect(r.bound[0].actual).to.not.equal(h.port)
    expect(r.errnos).to.deep.equal([777])
    expect(noticeCount(r.stderr)).to.equal(1)
    await h.release()
  })

  it('falls back to TCP with the token when the Unix socket cannot be reached', async () => {
    const h = await held()
    const r = await probe(['--family', '4', String(h.port)], {...d.env, STYXY_SOCKET: path.join(d.home, 'nowhere.sock'), STYXY_DEBUG: '1'})
    expect(r.code, r.stderr).to.equal(0)
    expect(r.bound[0].actual).to.not.equal(h.port)
    expect(r.stderr).to.not.contain('fail open')
    await h.release()
  })

  it('STYXY_NOTIFY=stdout and off', async () => {
    const h = await held()
    const out = startProgram(BINDPROBE, [String(h.port)], {...d.env, STYXY_NOTIFY: 'stdout'})
    await out.exited
    expect(noticeCount(out.stdout())).to.equal(1)
    expect(noticeCount(out.stderr())).to.equal(0)
    const off = await probe([String(h.port)], {...d.env, STYXY_NOTIFY: 'off'})
    expect(noticeCount(off.stderr)).to.equal(0)
    expect(off.bound[0].actual).to.not.equal(h.port)
    await h.release()
  })

  it('STYXY_DISABLE_REASSIGN=1: asks and records, never moves (the bind fails as it would without Styxy)', async () => {
    const h = await held()
    const before = (await d.client.metrics()).match(/action="denied"\} (\d+)/)![1]
    const r = await probe([String(h.port)], {...d.env, STYXY_DISABLE_REASSIGN: '1'})
    expect(r.code).to.equal(1)
    expect(r.bound[0]).to.include({actual: 0, error: 'EADDRINUSE'})
    expect(r.errnos).to.deep.equal([98])
    const after = (await d.client.metrics()).match(/action="denied"\} (\d+)/)![1]
    expect(Number(after)).to.equal(Number(before) + 1)
    await h.release()
  })

  it('UDP, AF_UNIX and port 0 go straight to the kernel: no request reaches the daemon', async () => {
    const h = await held()
    const count = async () => Number((await d.client.metrics()).match(/styxy_request_duration_seconds_count (\d+)/)![1])
    const before = await count()
    const udp = await probe(['--udp', String(h.port)], {...d.env, STYXY_DEBUG: '1'})
    expect(udp.bound[0]).to.include({actual: h.port, error: '0'}) // a UDP port is its own namespace
    const zero = await probe(['0'], {...d.env, STYXY_DEBUG: '1'})
    expect(zero.bound[0].actual).to.be.greaterThan(0)
    const sock = path.join(d.home, 'probe.sock')
    const unix = startProgram('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(sock)}); print("unix ok")`], {...d.env, STYXY_DEBUG: '1'})
    await unix.waitFor(/unix ok/)
    await unix.exited
    for (const text of [udp.stderr, zero.stderr, unix.stderr()]) expect(text).to.not.contain('styxy-preload:')
    // Three metrics reads between: exactly those, no bind requests.
    expect(await count()).to.equal(before + 1)
    await h.release()
  })

  it('many threads binding one taken port at once each get a working port', async () => {
    const h = await held()
    const r = await probe(['--threads', '16', '--family', '4', String(h.port)], {...d.env, STYXY_DEBUG: '1'})
    expect(r.code, r.stderr + r.bound.map((b) => JSON.stringify(b)).join('\n')).to.equal(0)
    expect(r.bound).to.have.length(16)
    const ports = r.bound.map((b) => b.actual)
    expect(new Set(ports).size).to.equal(16)
    expect(ports).to.not.include(h.port)
    expect(r.errnos.every((e) => e === 777)).to.equal(true)
    await h.release()
  })

  it('a fork-then-exec child is intercepted too', async () => {
    const h = await held()
    const r = await probe(['--fork-exec', String(h.port)], d.env)
    expect(r.code).to.equal(0)
    expect(r.bound[0].actual).to.not.equal(h.port)
    expect(noticeCount(r.stderr)).to.equal(1)
    await h.release()
  })

  it('50 programs started at once asking for one port end on 50 distinct ports, all serving', async () => {
    const h = await held()
    const programs: Program[] = Array.from({length: 50}, () => startProgram(BINDPROBE, ['--listen', '--hold', String(h.port)], d.env))
    try {
      const lines = await Promise.all(programs.map((p) => p.waitFor(/^bound ipv4 \d+ (\d+) 0$/m)))
      const ports = lines.map((m) => Number(m[1]))
      expect(new Set(ports).size).to.equal(50)
      expect(ports).to.not.include(h.port)
      expect((await Promise.all(ports.map(connects))).every(Boolean)).to.equal(true)
    } finally {
      await Promise.all(programs.map((p) => p.stop()))
      await h.release()
    }
  })
})

describe('interceptor: a listener in the other family', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon() })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('in the other family: both of a program’s sockets still end on one new port', async function () {
    const port = (await d.client.suggest('test', 1)).ports[0]
    const server = await listenOn('::1', port).catch(() => null)
    if (!server) this.skip() // no IPv6 on this machine
    try {
      // IPv4 first: the kernel lets 0.0.0.0 share a port with an IPv6-only listener, so its own bind would
      // succeed; the daemon, asking the kernel about both families, moves both sockets together.
      const r = await probe(['--family', 'dual', String(port)], d.env)
      expect(r.code, r.stderr).to.equal(0)
      const ports = r.bound.map((b) => b.actual)
      expect(ports).to.have.length(2)
      expect(ports[0]).to.not.equal(port)
      expect(ports[1]).to.equal(ports[0])
      expect(noticeCount(r.stderr)).to.equal(1)
    } finally {
      await closeServer(server!)
    }
  })
})

describe('interceptor: fails open', () => {
  const held = (host = '127.0.0.1') => heldIn(host)
  it('no daemon: the program binds its own port at once; a taken one is moved by the library alone, unless moves are off', async () => {
    const home = tempHome()
    const deadPort = await freePort()
    const env = isolatedEnv(home, deadPort)
    try {
      const port = await freePort()
      const ok = await probe(['--family', '4', String(port)], env)
      expect(ok.bound[0]).to.include({actual: port, error: '0'})
      expect(ok.errnos).to.deep.equal([777])
      const h = await held()
      const taken = await probe(['--family', '4', String(h.port)], env)
      expect(taken.bound[0].error).to.equal('0')
      expect(taken.bound[0].actual).to.be.above(h.port).and.at.most(h.port + 16)
      expect(taken.errnos).to.deep.equal([777])
      expect(taken.stderr).to.match(ALONE)
      const kept = await probe(['--family', '4', String(h.port)], {...env, STYXY_DISABLE_REASSIGN: '1'})
      expect(kept.bound[0]).to.include({actual: 0, error: 'EADDRINUSE'})
      expect(kept.errnos).to.deep.equal([98])
      await h.release()
    } finally {
      removeHome(home)
    }
  })

  it('a stopped daemon (SIGSTOP): the program still starts within the time bound, then the daemon catches up', async () => {
    const d = await startDaemon()
    const h = await held()
    try {
      process.kill(d.pid, 'SIGSTOP')
      const r = await probe(['--family', '4', String(h.port)], {...d.env, STYXY_TIMEOUT_MS: '200', STYXY_DEBUG: '1'})
      // The daemon did not answer in time: the library moved the program off the taken port itself.
      expect(r.bound[0].actual).to.be.above(h.port).and.at.most(h.port + 16)
      expect(r.stderr).to.match(/fail open: timeout/).and.match(ALONE)
      expect(r.ms).to.be.below(200 + 1500) // the bound plus process start-up on a loaded 2-core machine
      process.kill(d.pid, 'SIGCONT')
      expect((await d.client.health()).pid).to.equal(d.pid)
    } finally {
      process.kill(d.pid, 'SIGCONT')
      await h.release()
      await d.stop()
      removeHome(d.home)
    }
  })
})
