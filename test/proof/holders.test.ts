import {expect} from 'chai'
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import {CLI, startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {freePort, killAll, spawnHolder} from '../helpers/processes.js'
import {BINDPROBE, LIB, NOTICE, startProgram, type Program} from '../helpers/programs.js'
import {report, within} from '../helpers/proof.js'

const childrenOf = (pid: number): number[] => {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** The reaper at its default pace (1 s), as users get it. */
const REALISTIC = {STYXY_REAP_INTERVAL_MS: '1000', STYXY_LISTEN_GRACE_MS: '3600000'}
const RELEASE_BOUND_MS = 3000

describe('faults: holders that die without notice', () => {
  let d: TestDaemon
  const figures: Record<string, number> = {}
  before(async () => { d = await startDaemon({env: REALISTIC}) })
  after(async () => {
    report('holders', figures)
    await d.stop()
    removeHome(d.home)
  })

  const leasesOf = async (pids: number[]) => (await d.client.leases()).filter((l) => l.pid !== null && pids.includes(l.pid))

  it('kill -9 of a server: its lease is released within a few seconds', async () => {
    const port = await freePort()
    const server = startProgram(BINDPROBE, ['--listen', '--hold', String(port)], d.env)
    await server.waitFor(/^bound /m)
    expect(await leasesOf([server.child.pid!])).to.have.length(1)
    server.child.kill('SIGKILL')
    await server.exited
    figures.serverReleasedMs = await within(RELEASE_BOUND_MS, async () => (await leasesOf([server.child.pid!])).length === 0, 'server lease released')
  })

  it("kill -9 of `styxy run`: its lease goes within seconds; the orphaned server keeps its port from everyone else", async () => {
    // The server's stdin is its own pipe (from sleep), not styxy run's: --hold ends when stdin closes.
    const run = spawn(process.execPath, [CLI, 'run', '--service', 'dev', '--', 'sh', '-c', `sleep 300 | ${BINDPROBE} --listen --hold "$PORT"`], {
      env: {...d.env, STYXY_PRELOAD_LIB: LIB}, stdio: ['pipe', 'pipe', 'inherit'],
    })
    let out = ''
    const [, port] = await new Promise<RegExpMatchArray>((resolve) => run.stdout!.on('data', (c) => {
      out += c
      const m = out.match(/^bound \S+ (\d+) \d+ 0$/m)
      if (m) resolve(m)
    }))
    const shell = childrenOf(run.pid!)[0]
    const pipeline = childrenOf(shell)
    // The server's bind of $PORT joined styxy run's allocation (same instance): one lease, held by styxy run.
    expect((await leasesOf([run.pid!])).map((l) => l.port)).to.deep.equal([Number(port)])
    run.kill('SIGKILL')
    await new Promise((r) => run.once('exit', r))
    figures.runReleasedMs = await within(RELEASE_BOUND_MS, async () => (await leasesOf([run.pid!])).length === 0, "styxy run's lease released")
    // The orphan still listens there, and the daemon sees it: nobody else is handed its port.
    const other = spawnHolder()
    try {
      expect((await d.client.allocate({service: 'dev', port: Number(port), pid: other.pid})).port).to.not.equal(Number(port))
      expect(await d.client.bind({pid: other.pid!, port: Number(port)})).to.include({action: 'remap'})
    } finally {
      await killAll([other])
      for (const pid of [...pipeline, shell]) {
        try { process.kill(pid, 'SIGKILL') } catch { /* already gone: the pipeline ends when one side does */ }
      }
    }
  })

  it('kill -9 of a whole job (styxy run\'s process group and its command\'s: a shell, two servers): every lease is released within a few seconds', async () => {
    const [p1, p2] = [await freePort(), await freePort()]
    // fd 3 keeps the servers' stdin open (a background job's stdin would be /dev/null and end --hold at once).
    const script = `exec 3<&0; ${BINDPROBE} --listen --hold ${p1} <&3 & ${BINDPROBE} --listen --hold ${p2} <&3 & wait`
    const run = spawn(process.execPath, [CLI, 'run', '--', 'sh', '-c', script], {
      env: {...d.env, STYXY_PRELOAD_LIB: LIB}, stdio: ['pipe', 'pipe', 'inherit'], detached: true,
    })
    let out = ''
    await new Promise<void>((resolve) => run.stdout!.on('data', (c) => { out += c; if ((out.match(/^bound /gm) ?? []).length === 2) resolve() }))
    const shell = childrenOf(run.pid!)[0]
    const servers = childrenOf(shell)
    expect(servers).to.have.length(2)
    expect(await leasesOf(servers)).to.have.length(2)
    // Without a terminal, styxy run starts its command in a process group of its own (issue 17 item 8): the
    // whole job is both groups.
    process.kill(-run.pid!, 'SIGKILL')
    process.kill(-shell, 'SIGKILL')
    figures.groupReleasedMs = await within(RELEASE_BOUND_MS, async () => (await leasesOf([run.pid!, shell, ...servers])).length === 0, 'group leases released')
  })

  it('a recycled pid does not inherit: a new process given the dead holder’s pid does not keep its lease', async function () {
    // Recycling a pid on purpose needs root (kernel.ns_last_pid); the restart case is covered in the lifecycle tests.
    if (process.getuid?.() !== 0) this.skip()
    const holder = spawnHolder()
    const port = 20000 + Math.floor(Math.random() * 5000)
    const first = await d.client.bind({pid: holder.pid!, port})
    expect(first.action).to.equal('allow')
    // Freeze the reaper so the lease is still there when the pid comes back with someone else.
    process.kill(d.pid, 'SIGSTOP')
    let heir: ReturnType<typeof spawnHolder> | undefined
    try {
      await killAll([holder])
      for (let attempt = 0; attempt < 50 && !heir; attempt++) {
        fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(holder.pid! - 1))
        const candidate = spawnHolder()
        if (candidate.pid === holder.pid) heir = candidate
        else await killAll([candidate])
      }
    } finally {
      process.kill(d.pid, 'SIGCONT')
    }
    if (!heir) this.skip() // another process on the machine kept taking the pid first
    try {
      figures.recycledReleasedMs = await within(RELEASE_BOUND_MS, async () => !(await d.client.leases()).some((l) => l.id === first.leaseId), 'the old lease released though its pid is alive')
      const again = await d.client.bind({pid: heir!.pid!, port})
      expect(again).to.include({action: 'allow', port, repeat: false})
      expect(again.leaseId).to.not.equal(first.leaseId)
    } finally {
      await killAll([heir!])
    }
  })
})

describe('faults: the daemon stopped (SIGSTOP) while programs start', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon({env: REALISTIC}) })
  after(async () => {
    process.kill(d.pid, 'SIGCONT')
    await d.stop()
    removeHome(d.home)
  })

  it('programs start within the interceptor’s time bound on their own port; after SIGCONT the daemon catches up', async () => {
    const timeoutMs = 300 // STYXY_TIMEOUT_MS's default
    const ports = await Promise.all(Array.from({length: 8}, () => freePort()))
    process.kill(d.pid, 'SIGSTOP')
    let programs: Program[] = []
    const startMs: number[] = []
    try {
      programs = ports.map((p) => startProgram(BINDPROBE, ['--listen', '--hold', String(p)], d.env))
      const t0 = Date.now()
      const bound = await Promise.all(programs.map((p) => p.waitFor(/^bound \S+ (\d+) (\d+) (\S+)$/m).then((m) => { startMs.push(Date.now() - t0); return m })))
      for (const m of bound) expect([m[2], m[3]], 'its own port, no error').to.deep.equal([m[1], '0'])
      // The bound plus what starting 8 processes at once costs here.
      expect(Math.max(...startMs)).to.be.below(timeoutMs + 1200)
    } finally {
      process.kill(d.pid, 'SIGCONT')
    }
    const t1 = Date.now()
    expect((await d.client.health()).pid).to.equal(d.pid)
    const catchUpMs = Date.now() - t1
    // Coordination is back, and the daemon sees the world as the programs left it: a newcomer asking for a port
    // one of them took while it was stopped is moved.
    const late = startProgram(BINDPROBE, ['--listen', '--hold', String(ports[0])], d.env)
    const [, from, to] = await late.waitFor(NOTICE)
    expect(Number(from)).to.equal(ports[0])
    expect(Number(to)).to.not.equal(ports[0])
    // Whatever the daemon recorded from the queued requests goes with the programs.
    const pids = [...programs, late].map((p) => p.child.pid!)
    await Promise.all([...programs, late].map((p) => p.stop()))
    const drainedMs = await within(RELEASE_BOUND_MS, async () => !(await d.client.leases()).some((l) => pids.includes(l.pid!)), 'leases of the stopped-phase programs released')
    report('sigstop', {programs: programs.length, maxStartMs: Math.max(...startMs), timeoutMs, catchUpMs, drainedMs, lost: 0})
  })
})
