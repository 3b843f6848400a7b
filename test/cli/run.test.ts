import {expect} from 'chai'
import {spawn} from 'node:child_process'
import path from 'node:path'
import {startDaemon, removeHome, runCli, runCommand, tempHome, isolatedEnv, CLI, type TestDaemon} from '../helpers/daemon.js'
import {freePort} from '../helpers/processes.js'
import {BINDPROBE, LIB} from '../helpers/programs.js'
import {nextEvent, opened} from '../helpers/events.js'

describe('styxy run', () => {
  let d: TestDaemon
  // No reaper (10 minutes): whatever is released at a run's end, the run's own exit watch released.
  before(async () => { d = await startDaemon({env: {STYXY_REAP_INTERVAL_MS: '600000'}}) })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('passes the arguments after -- exactly as typed, in order, with the library preloaded', async () => {
    const args = ['--port', 'a b', '', '$HOME', '-x', '--', '--json', 'é']
    const r = await runCli(['run', '--', 'python3', '-c', 'import sys, json, os; print(json.dumps([sys.argv[1:], os.environ["LD_PRELOAD"]]))', ...args], {...d.env, LD_PRELOAD: 'libother.so'})
    expect(r.code, r.stderr).to.equal(0)
    const [argv, preload] = JSON.parse(r.stdout)
    expect(argv).to.deep.equal(args)
    expect(preload).to.equal(`${LIB}:libother.so`)
  })

  it('run as a command, its own Node does not load NODE_EXTRA_CA_CERTS; the command gets it exactly as given', async () => {
    // A bundle that cannot be read makes Node warn as it starts: only a Node process that loads it says so.
    const missing = path.join(d.home, 'no-such-bundle.pem')
    const show = ['run', '--', 'sh', '-c', 'printf "%s|%s" "${NODE_EXTRA_CA_CERTS-unset}" "${STYXY_CALLER_CA_CERTS-unset}"']
    const asCommand = await runCommand(CLI, show, {...d.env, NODE_EXTRA_CA_CERTS: missing})
    expect(asCommand.code, asCommand.stderr).to.equal(0)
    expect(asCommand.stdout).to.equal(`${missing}|unset`)
    expect(asCommand.stderr).to.not.contain('extra certs')
    // Through `node bin/run.cjs`, Node loads it before our code runs: the warning is a real signal.
    const throughNode = await runCli(show, {...d.env, NODE_EXTRA_CA_CERTS: missing})
    expect(throughNode.stdout).to.equal(`${missing}|unset`)
    expect(throughNode.stderr).to.contain('extra certs')
    // Set but empty stays set and empty; unset stays unset.
    expect((await runCommand(CLI, show, {...d.env, NODE_EXTRA_CA_CERTS: ''})).stdout).to.equal('|unset')
    const {NODE_EXTRA_CA_CERTS: _, ...none} = d.env
    expect((await runCommand(CLI, show, none)).stdout).to.equal('unset|unset')
  })

  it("relays the child's exit code, and 128+signal when it is killed", async () => {
    expect((await runCli(['run', '--', 'sh', '-c', 'exit 7'], d.env)).code).to.equal(7)
    expect((await runCli(['run', '--', 'sh', '-c', 'kill -KILL $$'], d.env)).code).to.equal(137)
    expect((await runCli(['run', '--', 'no-such-command-styxy'], d.env)).code).to.equal(127)
  })

  it('forwards SIGTERM to the child and exits with its code', async () => {
    const script = 'import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: (print("got TERM", flush=True), sys.exit(3)))\nprint("ready", flush=True)\ntime.sleep(30)'
    const child = spawn(process.execPath, [CLI, 'run', '--', 'python3', '-c', script], {env: d.env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    await new Promise<void>((resolve) => child.stdout.on('data', (c) => { out += c; if (out.includes('ready')) resolve() }))
    child.kill('SIGTERM')
    const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)))
    expect(out).to.contain('got TERM')
    expect(code).to.equal(3)
  })

  it('--service leases a port before the child starts, exports PORT, and the child may bind it; all released on exit', async () => {
    const r = await runCli(['run', '--service', 'storybook', '--', 'sh', '-c', `echo "PORT=$PORT"; exec ${BINDPROBE} --family 4 "$PORT"`], d.env)
    expect(r.code, r.stderr).to.equal(0)
    const port = Number(r.stdout.match(/PORT=(\d+)/)![1])
    expect(port).to.be.within(6006, 6029)
    expect(r.stdout).to.contain(`bound ipv4 ${port} ${port} 0`)
    expect(r.stderr).to.not.contain('STYXY: Port')
    const leases = await d.client.leases()
    expect(leases.map((l) => l.port)).to.not.include(port)
  })

  it("releases the leases of the child's own binds when it ends", async () => {
    const port = await freePort()
    const r = await runCli(['run', '--', BINDPROBE, '--family', '4', String(port)], d.env)
    expect(r.stdout).to.contain(`bound ipv4 ${port} ${port} 0`)
    expect((await d.client.leases()).map((l) => l.port)).to.not.include(port)
  })

  it("killed outright, its command keeps running and keeps its leases; the run's own lease goes", async () => {
    const script = 'import os, socket, sys, time\ns = socket.socket()\ns.bind(("127.0.0.1", int(sys.argv[1])))\ns.listen()\nprint("PORT=" + os.environ["PORT"], "pid", os.getpid(), flush=True)\ntime.sleep(30)'
    const port = await freePort()
    const run = spawn(process.execPath, [CLI, 'run', '--service', 'docs', '--', 'python3', '-c', script, String(port)], {env: d.env, stdio: ['ignore', 'pipe', 'inherit']})
    let out = ''
    let pid: number | undefined
    try {
      await new Promise<void>((resolve) => run.stdout.on('data', (c) => { out += c; if (out.includes('\n')) resolve() }))
      const m = /PORT=(\d+) pid (\d+)/.exec(out)
      expect(m, out).to.not.equal(null)
      const own = Number(m![1])
      pid = Number(m![2])
      expect((await d.client.leases()).map((l) => l.port)).to.include.members([own, port])
      const ws = d.client.events()
      await opened(ws)
      const gone = nextEvent(ws, (e) => e.type === 'lease.released' && e.data.port === own)
      run.kill('SIGKILL')
      await gone
      ws.close()
      const ports = (await d.client.leases()).map((l) => l.port)
      expect(ports).to.include(port)
      expect(ports).to.not.include(own)
    } finally {
      run.kill('SIGKILL')
      if (pid !== undefined) process.kill(pid, 'SIGKILL')
    }
  })

  it("a run outlives the daemon's connection timeouts (5 s idle, 10 s per request): its watch holds, over the socket and over TCP", async function () {
    // The wait is the point: past every timeout the daemon puts on a connection or a request, the run's exit
    // watch (held by the one app, over the socket or over TCP) must still hold its lease.
    this.timeout(30_000)
    const start = (env: NodeJS.ProcessEnv) => spawn(process.execPath, [CLI, 'run', '--service', 'docs', '--', 'sh', '-c', 'echo "PORT=$PORT"; read x'], {env, stdio: ['pipe', 'pipe', 'inherit']})
    // A socket path that does not exist: the CLI falls back to TCP, with the token.
    const runs = [start(d.env), start({...d.env, STYXY_SOCKET: path.join(d.home, 'nowhere.sock')})]
    try {
      const ports = await Promise.all(runs.map((run) => new Promise<number>((resolve) => {
        let out = ''
        run.stdout.on('data', (c) => { out += c; if (out.includes('\n')) resolve(Number(/PORT=(\d+)/.exec(out)?.[1])) })
      })))
      expect(ports.every((p) => p > 0), String(ports)).to.equal(true)
      await new Promise((resolve) => setTimeout(resolve, 11_000))
      expect((await d.client.leases()).map((l) => l.port)).to.include.members(ports)
      const exits = runs.map((run) => new Promise((resolve) => run.on('exit', resolve)))
      for (const run of runs) run.stdin.end('\n')
      expect(await Promise.all(exits)).to.deep.equal([0, 0])
      expect((await d.client.leases()).map((l) => l.port)).to.not.include.members(ports)
    } finally {
      for (const run of runs) run.kill('SIGKILL')
    }
  })

  it('a daemon restarted mid-run: the watch is gone with it, so the run releases its own lease at the end', async () => {
    const home = tempHome()
    const noReaper = {STYXY_REAP_INTERVAL_MS: '600000'}
    const first = await startDaemon({home, env: noReaper})
    const run = spawn(process.execPath, [CLI, 'run', '--service', 'docs', '--', 'sh', '-c', 'echo "PORT=$PORT"; read x'], {env: first.env, stdio: ['pipe', 'pipe', 'inherit']})
    let second: TestDaemon | undefined
    try {
      let out = ''
      await new Promise<void>((resolve) => run.stdout.on('data', (c) => { out += c; if (out.includes('\n')) resolve() }))
      const own = Number(/PORT=(\d+)/.exec(out)?.[1])
      await first.stop() // a stopping daemon releases nothing
      second = await startDaemon({home, port: first.port, env: noReaper})
      expect((await second.client.leases()).map((l) => l.port)).to.include(own)
      const exited = new Promise((resolve) => run.on('exit', resolve))
      run.stdin.end('\n')
      expect(await exited).to.equal(0)
      expect((await second.client.leases()).map((l) => l.port)).to.not.include(own)
    } finally {
      run.kill('SIGKILL')
      await second?.stop()
      await first.stop()
      removeHome(home)
    }
  })

  it('starts the daemon when none is running, without the interceptor in its environment', async () => {
    const home = tempHome()
    const port = await freePort()
    const env = isolatedEnv(home, port)
    try {
      const r = await runCli(['run', '--', 'true'], {...env, LD_PRELOAD: LIB})
      expect(r.code, r.stderr).to.equal(0)
      const status = await runCli(['daemon', 'status', '--json'], env)
      const pid = JSON.parse(status.stdout).pid as number
      const {readFileSync} = await import('node:fs')
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
      expect(environ.filter((e) => e.startsWith('LD_PRELOAD='))).to.deep.equal([])
    } finally {
      await runCli(['daemon', 'stop'], env)
      removeHome(home)
    }
  })

  it('says what is missing when no command is given', async () => {
    const r = await runCli(['run'], d.env)
    expect(r.code).to.equal(2)
    expect(r.stderr).to.contain('put the command after --')
  })
})

describe('styxy shell-init', () => {
  it('prints an LD_PRELOAD line naming the library by absolute path, idempotent in a real shell', async () => {
    const d = await startDaemon()
    try {
      const r = await runCli(['shell-init', '--no-start'], d.env)
      expect(r.stdout).to.contain(LIB)
      const sh = await new Promise<string>((resolve) => {
        const p = spawn('bash', ['-c', `${r.stdout}\n${r.stdout}\necho "$LD_PRELOAD"`], {env: {...d.env, LD_PRELOAD: 'libx.so'}})
        let out = ''
        p.stdout.on('data', (c) => (out += c))
        p.on('exit', () => resolve(out.trim()))
      })
      expect(sh).to.equal(`${LIB}:libx.so`)
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })
})
