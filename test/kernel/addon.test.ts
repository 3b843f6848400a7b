import {expect} from 'chai'
import {spawn, execFile, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import {decodeSockets, ipv6Text, type KernelSocket} from '../../src/kernel/decode.js'
import {kernelAddonPath, loadKernelAddon, type KernelAddon} from '../../src/kernel/native.js'

const LISTEN = 10
const ESTABLISHED = 1

function listen(host: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, host, () => resolve(server))
  })
}

const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port
const close = (s: net.Server) => new Promise((r) => s.close(r))

/** The inodes of this process's own sockets, from /proc/self/fd. */
function ownSocketInodes(): Set<number> {
  const inodes = new Set<number>()
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))
      if (m) inodes.add(Number(m[1]))
    } catch { /* closed meanwhile */ }
  }
  return inodes
}

function sleeper(): Promise<ChildProcess> {
  const child = spawn('sleep', ['30'], {stdio: 'ignore'})
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve(child))
    child.once('error', reject)
  })
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())))

describe('kernel addon (zig-out/lib/styxy_kernel.node)', () => {
  let k: KernelAddon
  const children: ChildProcess[] = []
  /** The one onExit callback routes each pid to whoever waits for it. */
  const waiting = new Map<number, () => void>()
  const reported: number[] = []

  before(() => {
    const loaded = loadKernelAddon()
    if (loaded.addon === null) throw new Error(`the addon did not load (run zig build): ${loaded.error}`)
    k = loaded.addon
    k.onExit((pids) => {
      for (const pid of pids) {
        reported.push(pid)
        waiting.get(pid)?.()
        waiting.delete(pid)
      }
    })
  })

  after(() => {
    for (const c of children) c.kill('SIGKILL')
  })

  function exitReported(pid: number): Promise<void> {
    if (reported.includes(pid)) return Promise.resolve()
    return new Promise((resolve) => waiting.set(pid, resolve))
  }

  describe('sockets', () => {
    it('answers the probe', () => {
      expect(k.probe()).to.equal('sock_diag')
    })

    it('finds an IPv4 and an IPv6 listener with family, address, uid and our own inode', async function () {
      const v4 = await listen('127.0.0.1')
      const v6 = await listen('::1').catch(() => null)
      try {
        const own = ownSocketInodes()
        const [a] = decodeSockets(k.sockets(portOf(v4), true)) as [KernelSocket]
        expect(a).to.include({family: 'ipv4', state: LISTEN, port: portOf(v4), uid: process.getuid!(), address: '127.0.0.1'})
        expect(a.inode).to.be.above(0)
        expect(own.has(a.inode), 'the inode is one of our own sockets').to.equal(true)
        expect(k.sockets(portOf(v4), true).length).to.equal(32)
        if (!v6) return this.skip() // no IPv6 loopback here
        const six = decodeSockets(k.sockets(portOf(v6), true))
        expect(six).to.have.length(1)
        expect(six[0]).to.include({family: 'ipv6', state: LISTEN, port: portOf(v6), uid: process.getuid!(), address: '::1'})
        expect(own.has(six[0].inode)).to.equal(true)
      } finally {
        await close(v4)
        if (v6) await close(v6)
      }
    })

    it('returns an empty buffer for a port nobody uses', async () => {
      const s = await listen('127.0.0.1')
      const port = portOf(s)
      await close(s)
      const b = k.sockets(port, true)
      expect(Buffer.isBuffer(b)).to.equal(true)
      expect(b.length).to.equal(0)
      expect(k.sockets(port, false).length).to.equal(0)
    })

    it('shows the connection as well when asked for every state', async () => {
      const server = await listen('127.0.0.1')
      const port = portOf(server)
      const accepted = new Promise<net.Socket>((r) => server.once('connection', r))
      const client = net.connect(port, '127.0.0.1')
      await new Promise((r) => client.once('connect', r))
      const peer = await accepted
      try {
        const all = decodeSockets(k.sockets(port, false))
        expect(all.map((s) => s.state).sort()).to.deep.equal([ESTABLISHED, LISTEN])
        const est = all.find((s) => s.state === ESTABLISHED)!
        expect(est).to.include({family: 'ipv4', port, address: '127.0.0.1', uid: process.getuid!()})
        expect(decodeSockets(k.sockets(port, true)).map((s) => s.state)).to.deep.equal([LISTEN])
        // The client's own socket is on its ephemeral port, and found there. Other programs' connections to
        // other destinations may share that port number: ours is the one with an inode of this process.
        const own = ownSocketInodes()
        const mine = decodeSockets(k.sockets(client.localPort!, false)).filter((s) => own.has(s.inode))
        expect(mine).to.have.length(1)
        expect(mine[0]).to.include({state: ESTABLISHED, port: client.localPort, address: '127.0.0.1'})
      } finally {
        client.destroy()
        peer.destroy()
        await close(server)
      }
    })

    it('keeps a socket bound but not listening to its own port (the kernel walks those without the port filter)', async () => {
      // Node cannot bind TCP without listening; python can, and holds it until its stdin closes.
      const py = spawn('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'],
        {stdio: ['pipe', 'pipe', 'ignore']})
      children.push(py)
      const port = Number(await new Promise<string>((r) => py.stdout!.once('data', (d) => r(String(d)))))
      const other = await listen('127.0.0.1')
      try {
        const bound = decodeSockets(k.sockets(port, false))
        expect(bound).to.have.length(1)
        expect(bound[0]).to.include({family: 'ipv4', state: 7, port, uid: process.getuid!(), address: '127.0.0.1'})
        expect(bound[0].inode).to.be.above(0)
        expect(decodeSockets(k.sockets(portOf(other), false)).map((s) => s.port)).to.deep.equal([portOf(other)])
        expect(k.sockets(port, true).length, 'not a listener').to.equal(0)
      } finally {
        py.stdin!.end()
        await close(other)
      }
    })

    it('counts what the kernel sent: examined grows by the records returned', async () => {
      const server = await listen('127.0.0.1')
      try {
        for (const [port, listenOnly] of [[portOf(server), true], [portOf(server), false], [0, true], [0, false]] as const) {
          const before = k.stats()
          const n = k.sockets(port, listenOnly).length / 32
          const after = k.stats()
          expect(after.queries - before.queries).to.equal(1)
          expect(after.examined - before.examined).to.equal(n)
        }
      } finally {
        await close(server)
      }
    })

    it("throws the kernel's refusal as a system error (code, negative errno, syscall)", async () => {
      // A fresh node out of file descriptors: its first query needs a netlink socket, its watch a pidfd.
      const script = `const fs = require('fs'); const k = require(${JSON.stringify(kernelAddonPath())})
        const held = []; try { for (;;) held.push(fs.openSync('/dev/null', 'r')) } catch {}
        const out = []
        for (const f of [() => k.sockets(80, true), () => k.watch(process.ppid)]) {
          try { f(); out.push('no error') } catch (e) { out.push({code: e.code, errno: e.errno, syscall: e.syscall, message: e.message}) }
        }
        console.log(JSON.stringify(out))`
      const out = await new Promise<string>((resolve, reject) =>
        execFile('sh', ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, script], {timeout: 10_000}, (error, stdout) => (error ? reject(error) : resolve(stdout))))
      const [sockets, watch] = JSON.parse(out) as Array<Record<string, unknown>>
      expect(sockets).to.deep.equal({code: 'EMFILE', errno: -24, syscall: 'socket(NETLINK_SOCK_DIAG)', message: 'socket(NETLINK_SOCK_DIAG) failed: EMFILE'})
      expect(watch).to.include({code: 'EMFILE', errno: -24})
    })

    it('refuses a port that is not one', () => {
      expect(() => k.sockets(-1, true)).to.throw(TypeError)
      expect(() => k.sockets(65536, true)).to.throw(TypeError)
      expect(() => k.sockets(80.5, true)).to.throw(TypeError)
      expect(() => (k.sockets as (p: unknown, l: unknown) => Buffer)(80, 'yes')).to.throw(TypeError)
    })
  })

  describe('exit watches', () => {
    it('reports a killed child to the onExit callback', async () => {
      const child = await sleeper()
      children.push(child)
      const n = k.watching()
      expect(k.watch(child.pid!)).to.equal(true)
      expect(k.watch(child.pid!), 'twice is once').to.equal(true)
      expect(k.watching()).to.equal(n + 1)
      const seen = exitReported(child.pid!)
      child.kill('SIGKILL')
      await seen
      expect(k.watching()).to.equal(n)
    })

    it('says false for a process that does not exist', async () => {
      const child = await sleeper()
      child.kill('SIGKILL')
      await exited(child) // and reaped by Node
      expect(k.watch(child.pid!)).to.equal(false)
      expect(() => k.watch(0)).to.throw(TypeError)
      expect(() => k.watch(-5)).to.throw(TypeError)
    })

    it('reports nothing for an unwatched process', async () => {
      const [dropped, kept] = [await sleeper(), await sleeper()]
      children.push(dropped, kept)
      expect(k.watch(dropped.pid!)).to.equal(true)
      expect(k.watch(kept.pid!)).to.equal(true)
      expect(k.unwatch(dropped.pid!)).to.equal(true)
      expect(k.unwatch(dropped.pid!)).to.equal(false)
      // The dropped one dies first: were it still watched, it would be reported no later than the kept one.
      dropped.kill('SIGKILL')
      await exited(dropped)
      const seen = exitReported(kept.pid!)
      kept.kill('SIGKILL')
      await seen
      expect(reported).to.not.include(dropped.pid)
    })

    it('survives a callback that throws, and keeps reporting', async () => {
      const got: number[] = []
      const restore = () => k.onExit((pids) => {
        for (const pid of pids) {
          reported.push(pid)
          waiting.get(pid)?.()
          waiting.delete(pid)
        }
      })
      try {
        let signal: () => void = () => {}
        k.onExit((pids) => {
          got.push(...pids)
          signal()
          throw new Error('a listener bug')
        })
        for (let i = 0; i < 2; i++) {
          const child = await sleeper()
          children.push(child)
          k.watch(child.pid!)
          const seen = new Promise<void>((r) => (signal = r))
          child.kill('SIGKILL')
          await seen
          expect(got).to.include(child.pid)
        }
      } finally {
        restore()
      }
    })

    it('works in a worker, and lets it be terminated (in a node of its own: a crash must not take mocha)', async () => {
      const worker = `const k = require(${JSON.stringify(kernelAddonPath())}); const {parentPort} = require('worker_threads')
        const c = require('child_process').spawn('sleep', ['30'])
        c.on('spawn', () => { k.onExit((pids) => parentPort.postMessage(pids.includes(c.pid))); k.watch(c.pid); c.kill('SIGKILL') })`
      const script = `const {Worker} = require('worker_threads'); const w = new Worker(${JSON.stringify(worker)}, {eval: true})
        w.on('message', async (seen) => { console.log('seen', seen); await w.terminate(); console.log('terminated') })`
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['-e', script], {timeout: 10_000}, (error, stdout) => (error ? reject(error) : resolve(stdout))))
      expect(out.trim().split('\n')).to.deep.equal(['seen true', 'terminated'])
    })

    it('does not keep a process alive', async () => {
      // A fresh node that watches this (living) process and has nothing else to do must exit by itself.
      const script = `const k = require(${JSON.stringify(kernelAddonPath())}); k.onExit(() => {}); console.log(k.watch(process.ppid))`
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['-e', script], {timeout: 10_000}, (error, stdout) => (error ? reject(error) : resolve(stdout))))
      expect(out.trim()).to.equal('true')
    })
  })
})

describe('kernel: decoding the records', () => {
  it('writes IPv6 addresses as Node does', () => {
    const samples = [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 2], [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1],
      [0, 0, 0, 0, 0, 0xffff, 0, 0], [0, 0, 0, 0, 0, 0, 0x102, 0x304], [0, 0, 0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0],
      [1, 0, 0, 1, 0, 0, 0, 1], [1, 0, 0, 0, 1, 0, 0, 1], [0xfe80, 0, 0, 0, 1, 0, 0, 1], [0x2001, 0xdb8, 0, 1, 1, 1, 1, 1],
      [0, 1, 0, 0, 0, 0, 0, 0], [0xff02, 0, 0, 0, 0, 1, 0xff00, 1], [1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0xfffe, 1, 2]]
    for (const groups of samples) {
      const b = Buffer.alloc(16)
      groups.forEach((g, i) => b.writeUInt16BE(g, 2 * i))
      // Node parses the full form and prints it its own way.
      const node = new net.SocketAddress({address: groups.map((g) => g.toString(16)).join(':'), family: 'ipv6'}).address
      expect(ipv6Text(b), node).to.equal(node)
    }
  })

  it('reads the 32-byte layout', () => {
    const r = Buffer.alloc(64)
    r.writeUInt8(4, 0); r.writeUInt8(10, 1); r.writeUInt16LE(8080, 2); r.writeUInt32LE(1000, 4); r.writeUInt32LE(123456, 8)
    Buffer.from([10, 1, 2, 3]).copy(r, 16)
    r.writeUInt8(6, 32); r.writeUInt8(6, 33); r.writeUInt16LE(443, 34)
    Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]).copy(r, 48)
    expect(decodeSockets(r)).to.deep.equal([
      {family: 'ipv4', state: 10, port: 8080, uid: 1000, inode: 123456, address: '10.1.2.3'},
      {family: 'ipv6', state: 6, port: 443, uid: 0, inode: 0, address: '::ffff:127.0.0.1'},
    ])
    expect(() => decodeSockets(Buffer.alloc(33))).to.throw(/whole number/)
  })
})

describe('kernel: loading the addon', () => {
  it('says why when it cannot load, instead of throwing', () => {
    const missing = loadKernelAddon('/nonexistent/styxy_kernel.node')
    expect(missing.addon).to.equal(null)
    expect(missing.error).to.match(/nonexistent/)
    expect(kernelAddonPath({STYXY_KERNEL_ADDON: 'x/y.node'})).to.equal(`${process.cwd()}/x/y.node`)
    expect(kernelAddonPath({})).to.match(/zig-out\/lib\/styxy_kernel\.node$/)
  })
})
