// The seccomp backend with real programs LD_PRELOAD can't reach: a static musl server and a Go server,
// each asking for a taken port, under `styxy run` and the real supervisor.
import {expect} from 'chai'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {spawnSync} from 'node:child_process'
import {startDaemon, removeHome, runCli, isolatedEnv, tempHome, CLI, type TestDaemon} from '../helpers/daemon.js'
import {listenOn, portOf, closeServer, freePort} from '../helpers/processes.js'
import {startProgram, httpGet, noticeCount, NOTICE, NOTICE_ALONE, BINDPROBE, HTTPSTATIC, DENY_SECCOMP, SUPERVISOR, buildGoServe, type Program} from '../helpers/programs.js'

describe('seccomp backend', function () {
  let d: TestDaemon
  let holder: net.Server
  let taken: number
  let goserve: string
  let scratch: string
  const running: Program[] = []

  before(async function () {
    // The first run compiles Go's standard library into the project's cache.
    this.timeout(300_000)
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'styxy-seccomp-'))
    ;[d, goserve] = await Promise.all([startDaemon(), buildGoServe(scratch)])
    // A port of a managed range: moves land on its neighbours, not among the ephemeral ports that outgoing
    // connections take at random (eight threads asking at once once ran out of asks there). The hub range, as
    // in servers.test: no test expects a given port of it, and the moves leave TIME_WAIT sockets behind.
    holder = await listenOn('127.0.0.1', (await d.client.suggest('hub', 1)).ports[0])
    taken = portOf(holder)
  })
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()))
  })
  after(async () => {
    await closeServer(holder)
    await d.stop()
    removeHome(d.home)
    fs.rmSync(scratch, {recursive: true, force: true})
  })

  const run = (args: string[], env = d.env) => {
    const p = startProgram(process.execPath, [CLI, 'run', ...args], env, {preload: false})
    running.push(p)
    return p
  }

  async function movedAndServing(p: Program, body: string): Promise<number> {
    const got = Number((await p.waitFor(/listening on (\d+)/))[1])
    expect(got, p.stderr()).to.not.equal(taken)
    const res = await httpGet(got)
    expect(res.status).to.equal(200)
    expect(res.body).to.equal(`${body} ${got}\n`)
    const notice = p.stderr().match(NOTICE)
    expect(notice, p.stderr()).to.not.equal(null)
    expect([Number(notice![1]), Number(notice![2])]).to.deep.equal([taken, got])
    expect(noticeCount(p.stderr())).to.equal(1)
    return got
  }

  it('auto picks seccomp for a static binary, which lands on another port and serves there, named by --name; its lease goes when it ends', async () => {
    const p = run(['--explain', '--name', 'static-srv', '--', HTTPSTATIC, String(taken)])
    const got = await movedAndServing(p, 'httpstatic')
    expect(p.stderr()).to.match(/backend seccomp: .*httpstatic: statically linked/)
    const lease = (await d.client.leases()).find((l) => l.port === got)
    // The lease names the server itself, not the supervisor in front of it.
    expect(lease, 'lease for the moved port').to.not.equal(undefined)
    expect(fs.readFileSync(`/proc/${lease!.pid}/cmdline`, 'utf8')).to.contain('httpstatic')
    // The supervisor builds the bind request from its own environment: STYXY_NAME from run --name reaches it.
    expect(lease!.name).to.equal('static-srv')
    await p.stop()
    expect((await d.client.leases()).map((l) => l.port)).to.not.include(got)
  })

  it('auto picks seccomp for a Go server, which lands on another port and serves there', async () => {
    const p = run(['--explain', '--', goserve, String(taken)])
    await movedAndServing(p, 'goserve')
    expect(p.stderr()).to.match(/backend seccomp: .*goserve: a Go binary/)
  })

  it('auto picks preload for python3, through any #! wrapper', async () => {
    const r = await runCli(['run', '--explain', '--', 'python3', '-c', 'pass'], d.env)
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stderr).to.match(/backend preload: .*dynamically linked/)
  })

  it('STYXY_BACKEND sets the default backend; a value it does not know is said, and auto is used', async () => {
    const forced = await runCli(['run', '--explain', '--', 'python3', '-c', 'pass'], {...d.env, STYXY_BACKEND: 'seccomp'})
    expect(forced.stderr).to.contain('backend seccomp: asked for')
    const bogus = await runCli(['run', '--explain', '--', 'python3', '-c', 'pass'], {...d.env, STYXY_BACKEND: 'bogus'})
    expect(bogus.code).to.equal(0)
    expect(bogus.stderr).to.contain('STYXY_BACKEND=bogus is not one of auto, preload, seccomp; using auto')
    expect(bogus.stderr).to.match(/backend preload: .*dynamically linked/)
  })

  it('covers a grandchild: the filter is inherited across fork and exec', async () => {
    const p = run(['--backend', 'seccomp', '--', 'sh', '-c', `${HTTPSTATIC} ${taken} & trap 'kill $!' TERM; wait`])
    await movedAndServing(p, 'httpstatic')
  })

  it('a server left in the background binds after the command has exited, and is still covered', async () => {
    const go = path.join(scratch, 'go-on')
    const out = path.join(scratch, 'background.out')
    const pidFile = path.join(scratch, 'background.pid')
    // The background server waits for a file the test creates only after `styxy run` has returned.
    const script = `(while [ ! -e ${go} ]; do sleep 0.02; done; exec ${HTTPSTATIC} ${taken}) >${out} 2>&1 & echo $! >${pidFile}`
    const r = await runCli(['run', '--backend', 'seccomp', '--', 'sh', '-c', script], d.env)
    expect(r.code, r.stderr).to.equal(0)
    const pid = Number(fs.readFileSync(pidFile, 'utf8'))
    try {
      fs.writeFileSync(go, '')
      let text = ''
      for (const until = Date.now() + 10_000; !/listening on \d+/.test(text) && Date.now() < until;) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        text = fs.readFileSync(out, 'utf8')
      }
      const got = Number(text.match(/listening on (\d+)/)?.[1])
      expect(got, text).to.be.above(0).and.not.equal(taken)
      expect((await httpGet(got)).body).to.equal(`httpstatic ${got}\n`)
      // The notice went where the server's own stderr goes (its file), not to styxy run's long-closed pipe.
      expect(text).to.match(NOTICE)
    } finally {
      // Already gone if it failed to start; that failure is the one to report.
      try { process.kill(pid, 'SIGTERM') } catch { /* exited */ }
    }
  })

  it('threads binding one taken port at the same moment each get a distinct port', async () => {
    const threads = 8
    const p = run(['--backend', 'seccomp', '--', HTTPSTATIC, '--threads', String(threads), String(taken)])
    await p.waitFor(/listening on \d+/)
    const ports = [...p.stdout().matchAll(/thread bound (\d+)/g)].map((m) => Number(m[1]))
    expect(ports, p.stdout()).to.have.length(threads)
    expect(new Set(ports).size).to.equal(threads)
    expect(ports).to.not.include(taken)
  })

  it('relays exit codes and signals, and hands the command nothing of its own: fds, blocked or ignored signals', async () => {
    expect((await runCli(['run', '--backend', 'seccomp', '--', 'sh', '-c', 'exit 7'], d.env)).code).to.equal(7)
    expect((await runCli(['run', '--backend', 'seccomp', '--', 'sh', '-c', 'kill -KILL $$'], d.env)).code).to.equal(137)
    const missing = await runCli(['run', '--backend', 'seccomp', '--', 'no-such-command-styxy'], d.env)
    expect(missing.code).to.equal(127)
    expect(missing.stderr).to.contain('command not found')
    // Whatever the test runner itself passes down reaches both backends alike; the supervisor adds nothing.
    // Whatever the test runner passes down reaches both backends alike, so fds are compared with preload's;
    // the signals the supervisor blocks (CHLD, TERM, HUP, INT, QUIT) and ignores (PIPE) for itself must reach
    // the command in their default state. The masks are read by the exec'd command itself: a shell reading
    // its own may catch itself mid-fork, when dash blocks every signal.
    const seen = async (backend: string) => {
      const out = (await runCli(['run', '--backend', backend, '--', 'sh', '-c', 'ls /proc/$$/fd; exec grep -E "^Sig(Blk|Ign)" /proc/self/status'], d.env)).stdout
      const mask = (name: string) => BigInt('0x' + (out.match(new RegExp(`${name}:\\s*([0-9a-f]+)`))?.[1] ?? 'ffffffffffffffff'))
      return {fds: out.split('\n').filter((l) => /^\d+$/.test(l)).sort(), blocked: mask('SigBlk'), ignored: mask('SigIgn')}
    }
    const [seccomp, preload] = await Promise.all([seen('seccomp'), seen('preload')])
    expect(seccomp.fds).to.include.members(['0', '1', '2'])
    expect(seccomp.fds).to.deep.equal(preload.fds)
    const bit = (sig: number) => 1n << BigInt(sig - 1)
    const ours = [1, 2, 3, 15, 17].reduce((m, s) => m | bit(s), 0n)
    expect(seccomp.blocked & ours, `SigBlk ${seccomp.blocked.toString(16)}`).to.equal(0n)
    expect(seccomp.ignored & bit(13), `SigIgn ${seccomp.ignored.toString(16)}`).to.equal(0n)
  })

  it('with the daemon down the original bind goes ahead, and a taken port is moved by the supervisor alone', async () => {
    const home = tempHome()
    try {
      const env = isolatedEnv(home, await freePort())
      const free = await freePort()
      const ok = startProgram(SUPERVISOR, ['--', HTTPSTATIC, String(free)], env, {preload: false})
      running.push(ok)
      expect(Number((await ok.waitFor(/listening on (\d+)/))[1])).to.equal(free)
      const busy = startProgram(SUPERVISOR, ['--', HTTPSTATIC, String(taken)], env, {preload: false})
      running.push(busy)
      const got = Number((await busy.waitFor(/listening on (\d+)/))[1])
      expect(got).to.be.above(taken).and.at.most(taken + 16)
      // Its own pipe: the notice on stderr may arrive after the server's line on stdout (the full suite's load).
      await busy.waitFor(NOTICE_ALONE)
      expect(busy.stderr()).to.match(NOTICE_ALONE)
      expect((await httpGet(got)).status).to.equal(200)
    } finally {
      removeHome(home)
    }
  })

  it('where the kernel refuses seccomp, says so once and falls back to LD_PRELOAD', async () => {
    const r = spawnSync(DENY_SECCOMP, [process.execPath, CLI, 'run', '--backend', 'seccomp', '--', BINDPROBE, '--family', '4', String(taken)], {env: d.env, encoding: 'utf8', timeout: 20_000})
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stderr.match(/seccomp backend unavailable here \(seccomp\(user notification\): PERM\); using LD_PRELOAD instead/g)).to.have.length(1)
    const bound = r.stdout.match(/bound ipv4 (\d+) (\d+) 0/)
    expect(bound, r.stdout).to.not.equal(null)
    expect(Number(bound![1])).to.equal(taken)
    expect(Number(bound![2])).to.not.equal(taken)
    expect(noticeCount(r.stderr)).to.equal(1)
  })

  it('doctor reports whether the backend works here', async () => {
    const works = await runCli(['doctor', '--json'], d.env)
    const check = (out: string) => (JSON.parse(out) as {checks: {name: string; level: string; detail: string}[]}).checks.find((c) => c.name === 'seccomp backend')
    expect(check(works.stdout)?.level).to.equal('pass')
    const refused = spawnSync(DENY_SECCOMP, [process.execPath, CLI, 'doctor', '--json'], {env: d.env, encoding: 'utf8', timeout: 20_000})
    expect(check(refused.stdout)).to.deep.include({level: 'warn'})
    expect(check(refused.stdout)!.detail).to.contain('seccomp(user notification) refused')
  })
})

describe('seccomp backend: a command in a network namespace of its own', () => {
  // The daemon answers for its own network namespace (it compares the asker's /proc/<pid>/ns/net with its
  // own); a command in another one is not its to coordinate.
  let d: TestDaemon
  before(async () => { d = await startDaemon() })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('is not checked against the listeners of our namespace, which it does not share', async function () {
    // A new network namespace needs root (or a user namespace this sandbox may refuse).
    if (process.getuid?.() !== 0 || spawnSync('unshare', ['-n', 'true']).status !== 0) this.skip()
    const port = (await d.client.suggest('test', 1)).ports[0]
    const server = await listenOn('::1', port).catch(() => null)
    if (!server) this.skip() // no IPv6 on this machine
    try {
      // Here an IPv6 listener holds the port; in the command's own namespace nothing does.
      const r = spawnSync(process.execPath, [CLI, 'run', '--backend', 'seccomp', '--', 'unshare', '-n', BINDPROBE, '--family', '4', String(port)], {env: d.env, encoding: 'utf8'})
      expect(r.status, r.stderr).to.equal(0)
      expect(r.stdout).to.match(new RegExp(`^bound ipv4 ${port} ${port} 0$`, 'm'))
      expect(noticeCount(r.stderr)).to.equal(0)
    } finally {
      await closeServer(server!)
    }
  })
})
