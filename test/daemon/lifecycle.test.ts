import {expect} from 'chai'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import Database from 'better-sqlite3'
import {startDaemon, removeHome, runCli, tempHome, isolatedEnv, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, portOf, spawnHolder, freePort, recycleWithinTick, startTimeOf} from '../helpers/processes.js'
import {nextEvent, opened} from '../helpers/events.js'
import {isSameProcessAlive, processStartTime} from '../../src/daemon/proc.js'

describe('daemon lifecycle', () => {
  it('a second daemon for the same state directory says one is already running, and where', async () => {
    const d = await startDaemon()
    try {
      const r = await runCli(['daemon', 'start', '--foreground'], {...d.env, STYXY_DAEMON_PORT: '0'})
      expect(r.code).to.equal(1)
      expect(r.stderr).to.contain('already running').and.contain(d.home)
      expect((await d.client.health()).pid).to.equal(d.pid)
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })

  it('daemon start (detached), status, stop through the CLI', async () => {
    const home = tempHome()
    const port = await freePort()
    const env = isolatedEnv(home, port)
    try {
      expect((await runCli(['daemon', 'status'], env)).code).to.equal(1)
      const started = await runCli(['daemon', 'start', '--json'], env)
      expect(started.code, started.stderr).to.equal(0)
      const info = JSON.parse(started.stdout)
      expect(info).to.include({alreadyRunning: false})
      const again = JSON.parse((await runCli(['daemon', 'start', '--json'], env)).stdout)
      expect(again).to.include({alreadyRunning: true, pid: info.pid})
      const status = await runCli(['daemon', 'status', '--json'], env)
      expect(status.code).to.equal(0)
      expect(JSON.parse(status.stdout)).to.include({running: true, pid: info.pid})
      const restarted = JSON.parse((await runCli(['daemon', 'restart', '--json'], env)).stdout)
      expect(restarted.previousPid).to.equal(info.pid)
      expect(restarted.pid).to.not.equal(info.pid)
      expect(processStartTime(info.pid), 'the old daemon is gone').to.equal(null)
      const stopped = await runCli(['daemon', 'stop', '--json'], env)
      expect(JSON.parse(stopped.stdout)).to.include({stopped: true, pid: restarted.pid})
      expect(processStartTime(restarted.pid), 'the daemon process is gone').to.equal(null)
      expect(fs.existsSync(path.join(home, 'daemon.sock'))).to.equal(false)
    } finally {
      await runCli(['daemon', 'stop'], env)
      removeHome(home)
    }
  })

  it('replaces a stale socket file left by a crash, and keeps every lease', async () => {
    const holder = spawnHolder()
    const d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '600000'}})
    const lease = await d.client.allocate({service: 'dev', pid: holder.pid})
    await d.kill9()
    expect(fs.existsSync(path.join(d.home, 'daemon.sock'))).to.equal(true)
    const again = await startDaemon({home: d.home})
    try {
      expect((await again.client.leases()).map((l) => [l.id, l.port])).to.deep.equal([[lease.id, lease.port]])
    } finally {
      await killAll([holder])
      await again.stop()
      removeHome(d.home)
    }
  })

  it('SIGTERM stops it cleanly, announcing daemon.stopping', async () => {
    const d = await startDaemon()
    const ws = d.client.events()
    await opened(ws)
    const stopping = nextEvent(ws, (e) => e.type === 'daemon.stopping')
    const code = d.stop()
    expect((await stopping).data).to.include({pid: d.pid, reason: 'SIGTERM'})
    expect(await code).to.equal(0)
    expect(fs.existsSync(path.join(d.home, 'daemon.sock'))).to.equal(false)
    removeHome(d.home)
  })

  it('a stderr whose reader is gone (a starter that piped it and died) does not keep it from stopping', async () => {
    const d = await startDaemon()
    try {
      d.child.stderr!.destroy()
      d.child.stdout!.destroy()
      // Something to log while nobody reads: a request for a missing route, then a stop (which logs too).
      await d.client.health()
      d.child.kill('SIGTERM')
      const code = await new Promise((resolve) => d.child.once('exit', resolve))
      expect(code).to.equal(0)
    } finally {
      removeHome(d.home)
    }
  })

  it('never runs under the interceptor: LD_PRELOAD is gone from its environment', async () => {
    const d = await startDaemon({env: {LD_PRELOAD: 'libnothing-styxy-test.so'}})
    try {
      // glibc only warns about a preload it cannot find; what matters is that the daemon's children would not inherit it.
      const environ = fs.readFileSync(`/proc/${d.pid}/environ`, 'utf8').split('\0')
      expect(environ.some((e) => e.startsWith('LD_PRELOAD='))).to.equal(true) // the kernel keeps the exec-time copy
      const started = await runCli(['daemon', 'start', '--json'], {...d.env, LD_PRELOAD: 'libnothing-styxy-test.so'})
      expect(JSON.parse(started.stdout)).to.include({alreadyRunning: true})
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })

  it('refuses a database written by a newer schema, with a clear message', async () => {
    const home = tempHome()
    const db = new Database(path.join(home, 'styxy.db'))
    db.pragma('user_version = 99')
    db.close()
    const r = await runCli(['daemon', 'start', '--foreground'], isolatedEnv(home, 0))
    expect(r.code).to.not.equal(0)
    expect(r.stderr).to.match(/schema version 99, newer than this Styxy supports/)
    removeHome(home)
  })

  it('refuses an invalid config file, naming the field', async () => {
    const home = tempHome()
    fs.mkdirSync(path.join(home, 'config', 'styxy'), {recursive: true})
    fs.writeFileSync(path.join(home, 'config', 'styxy', 'config.json'), JSON.stringify({serviceTypes: {web: {range: [9000, 8000]}}}))
    const r = await runCli(['daemon', 'start', '--foreground'], isolatedEnv(home, 0))
    expect(r.code).to.not.equal(0)
    expect(r.stderr).to.contain('serviceTypes.web.range').and.contain('range start must not exceed its end')
    removeHome(home)
  })

  it('serves the types of a valid config file', async () => {
    const home = tempHome()
    fs.mkdirSync(path.join(home, 'config', 'styxy'), {recursive: true})
    fs.writeFileSync(path.join(home, 'config', 'styxy', 'config.json'), JSON.stringify({serviceTypes: {web: {range: [7000, 7009]}, dev: {range: [3500, 3599]}}}))
    const d = await startDaemon({home})
    try {
      const types = await d.client.serviceTypes()
      expect(types.find((t) => t.name === 'web')).to.deep.include({range: [7000, 7009], source: 'config'})
      expect((await d.client.allocate({service: 'dev'})).port).to.be.within(3500, 3599)
    } finally {
      await d.stop()
      removeHome(home)
    }
  })
})

describe('daemon: leases follow their holders', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '400', STYXY_INSTANCE_TTL_MS: '400'}}) })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it("a dead holder's lease is released (an event says why)", async () => {
    const holder = spawnHolder()
    const ws = d.client.events()
    await opened(ws)
    const lease = await d.client.allocate({service: 'api', pid: holder.pid})
    const released = nextEvent(ws, (e) => e.type === 'lease.released' && e.data.id === lease.id)
    await killAll([holder])
    const e = await released
    expect(e.type === 'lease.released' && e.data.reason).to.equal('holder-exited')
    ws.close()
  })

  it("a restarted server gets its port back at once: its predecessor's lease died with it", async () => {
    const first = spawnHolder()
    const port = (await d.client.suggest('auth', 1)).ports[0]
    expect((await d.client.bind({pid: first.pid!, port, instanceId: 'team/api'})).action).to.equal('allow')
    await killAll([first])
    const second = spawnHolder()
    const again = await d.client.bind({pid: second.pid!, port})
    expect(again).to.include({action: 'allow', port})
    await killAll([second])
  })

  it('a bind lease whose listener went away is released after the grace period; one still listening stays', async () => {
    const holder = spawnHolder()
    const port = await freePort()
    // Ask first, then listen: the order every intercepted program follows.
    const listening = await d.client.bind({pid: process.pid, port})
    expect(listening.action).to.equal('allow')
    const server = await listenOn('127.0.0.1', port)
    const idle = await d.client.bind({pid: holder.pid!, port: 3033})
    const ws = d.client.events()
    await opened(ws)
    const released = nextEvent(ws, (e) => e.type === 'lease.released' && e.data.id === idle.leaseId)
    const e = await released
    expect(e.type === 'lease.released' && e.data.reason).to.equal('not-listening')
    expect((await d.client.leases()).map((l) => l.id)).to.include(listening.leaseId)
    await closeServer(server)
    await killAll([holder])
    ws.close()
  })

  it('an instance whose heartbeats stop expires, and its leases go with it', async () => {
    const ws = d.client.events()
    await opened(ws)
    const inst = await d.client.registerInstance({id: 'agent-7'})
    const lease = await d.client.allocate({service: 'storybook', instanceId: inst.id})
    const expired = nextEvent(ws, (e) => e.type === 'instance.expired' && e.data.id === 'agent-7')
    const released = nextEvent(ws, (e) => e.type === 'lease.released' && e.data.id === lease.id)
    expect((await expired).type).to.equal('instance.expired')
    const r = await released
    expect(r.type === 'lease.released' && r.data.reason).to.equal('instance-expired')
    ws.close()
  })

  it('a [::1] listener makes the IPv4 port taken', async () => {
    const server = await listenOn('::1')
    const port = portOf(server)
    try {
      const info = await d.client.port(port)
      expect(info.bound).to.equal(true)
      expect(info.listeners[0]).to.include({family: 'ipv6', address: '::1'})
      const holder = spawnHolder()
      const answer = await d.client.bind({pid: holder.pid!, port})
      expect(answer.action).to.equal('remap')
      expect(answer.port).to.not.equal(port)
      await killAll([holder])
    } finally {
      await closeServer(server)
    }
  })
})

describe('daemon: a recycled pid does not inherit', () => {
  it('a lease recorded for an earlier process with the same pid is dropped at restart', async () => {
    const holder = spawnHolder()
    const d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '600000'}})
    const lease = await d.client.allocate({service: 'database', pid: holder.pid})
    const kept = await d.client.allocate({service: 'database', pid: holder.pid})
    await d.stop()
    // Same pid, other start time: exactly what the table holds when the pid was recycled while the daemon was down.
    const db = new Database(path.join(d.home, 'styxy.db'))
    db.prepare('UPDATE leases SET pid_start = pid_start + 12345 WHERE id = ?').run(lease.id)
    db.close()
    const again = await startDaemon({home: d.home})
    try {
      const ids = (await again.client.leases()).map((l) => l.id)
      expect(ids).to.deep.equal([kept.id])
    } finally {
      await killAll([holder])
      await again.stop()
      removeHome(d.home)
    }
  })
  it('a pid that passes to a new process within one clock tick (same start time) is not the same process', async function () {
    // Recycling a pid on purpose needs root (kernel.ns_last_pid).
    if (process.getuid?.() !== 0) this.skip()
    const landed = await recycleWithinTick(async (pid) => {
      const start = processStartTime(pid)
      expect(start).to.equal(startTimeOf(pid))
      return start
    }, async (pid, start) => {
      expect(isSameProcessAlive(pid, start), 'the dead holder').to.equal(false)
      expect(processStartTime(pid), 'the heir, read afresh').to.equal(start)
    })
    if (!landed) this.skip() // no recycle landed within the tick (a busy machine)
  })
})

describe('daemon: the socket file', () => {
  it('is 0600 and lives in the state directory unless STYXY_SOCKET says otherwise', async () => {
    const home = tempHome()
    const sock = path.join(home, 'custom.sock')
    const d = await startDaemon({home, env: {STYXY_SOCKET: sock}})
    try {
      expect(fs.statSync(sock).mode & 0o777).to.equal(0o600)
      const s = net.connect(sock)
      await new Promise((r) => s.once('connect', r))
      s.destroy()
    } finally {
      await d.stop()
      removeHome(home)
    }
  })
})
