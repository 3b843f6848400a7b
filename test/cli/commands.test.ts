import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {spawn} from 'node:child_process'
import {startDaemon, removeHome, runCli, tempHome, isolatedEnv, CLI, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, freePort, killAll, listenOn, portOf, spawnHolder} from '../helpers/processes.js'

const json = (s: string) => JSON.parse(s) as Record<string, unknown> & Record<string, any>

describe('CLI commands against a real daemon', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon() })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })
  const cli = (...args: string[]) => runCli(args, d.env)

  it('status: human and --json', async () => {
    const h = await cli('status')
    expect(h.code).to.equal(0)
    expect(h.stdout).to.contain(`running (pid ${d.pid}`).and.contain(path.join(d.home, 'daemon.sock'))
    const j = json((await cli('status', '--json')).stdout)
    expect(j).to.include({running: true, pid: d.pid})
    expect(j.paths.database).to.equal(path.join(d.home, 'styxy.db'))
  })

  it('allocate, list, release: human and --json', async () => {
    const a = await cli('allocate', '-s', 'docs', '-n', 'site')
    expect(a.code, a.stderr).to.equal(0)
    const [, port, id] = a.stdout.match(/^(\d+) \(lease (l-[\w-]+), docs\)/)!
    const list = await cli('list', '-v')
    // Its name is its URL's: http://site.localhost:<proxy port>/.
    expect(list.stdout).to.match(new RegExp(`^${port}\\s+docs\\s+http://site\\.localhost:\\d+/\\s+allocation\\s`, 'm'))
    expect(list.stdout).to.contain(id)
    const lj = json((await cli('list', '--json', '--service', 'docs')).stdout) as unknown as {port: number}[]
    expect(lj.map((l) => l.port)).to.deep.equal([Number(port)])
    const r = json((await cli('release', port, '--json')).stdout)
    expect(r).to.include({id, port: Number(port)})
    expect((await cli('list')).stdout).to.not.match(new RegExp(`^${port}\\s`, 'm'))
  })

  it('allocate a single-instance type twice: the second joins', async () => {
    const first = json((await cli('allocate', '-s', 'ai', '--json')).stdout)
    const second = await cli('allocate', '-s', 'ai')
    expect(second.stdout).to.contain(`${first.port} (joined the existing ai holder`)
    await cli('release', first.id)
  })

  it('check: exit 0 when free, 1 when taken, and by whom', async () => {
    const server = await listenOn('127.0.0.1')
    const taken = portOf(server)
    try {
      const t = await cli('check', String(taken))
      expect(t.code).to.equal(1)
      expect(t.stdout).to.contain(`Port ${taken} is taken`).and.contain(`pid ${process.pid}`)
      const tj = await cli('check', String(taken), '--json')
      expect(tj.code).to.equal(1)
      expect(json(tj.stdout)).to.include({free: false, bound: true})
    } finally {
      await closeServer(server)
    }
    const free = await freePort()
    const f = await cli('check', String(free), '--json')
    expect(f.code).to.equal(0)
    expect(json(f.stdout)).to.include({free: true, port: free})
  })

  it('scan: the ports of a range in use, and by whom', async () => {
    const lease = json((await cli('allocate', '-s', 'build', '--json')).stdout)
    const s = await cli('scan', '--service', 'build')
    expect(s.stdout).to.match(new RegExp(`^${lease.port}\\s+leased`, 'm'))
    const sj = json((await cli('scan', '--start', '8200', '--end', '8299', '--json')).stdout) as unknown as {port: number}[]
    expect(sj.map((p) => p.port)).to.include(lease.port)
    await cli('release', lease.id)
  })

  it('suggest and which', async () => {
    const s = await cli('suggest', 'api', '-n', '3')
    expect(s.stdout.trim().split('\n').map(Number).every((p) => p >= 8000 && p <= 8099)).to.equal(true)
    expect(json((await cli('suggest', 'storybook', '--json')).stdout)).to.deep.include({service: 'storybook'})
    const w = await cli('which', 'npx', 'storybook', 'dev')
    expect(w.stdout).to.match(/^storybook: matched/)
    expect(json((await cli('which', 'uvicorn app:app', '--json')).stdout)).to.include({service: 'api', command: 'uvicorn app:app'})
  })

  it('log (and its alias reassignments) shows moves, newest last', async () => {
    const holder = spawnHolder()
    // A lease (not a fresh listener, which the daemon may see up to 250 ms late) makes the move certain.
    const taken = await d.client.allocate({service: 'hub'})
    const port = taken.port
    try {
      const moved = await d.client.bind({pid: holder.pid!, port, command: 'hub-server'})
      expect(moved).to.include({action: 'remap', requestedPort: port})
      const l = await cli('log')
      // The port it moved to depends on what else is busy on this machine (TIME_WAIT from earlier tests).
      expect(l.stdout.trim().split('\n').at(-1), l.stdout).to.match(new RegExp(`${holder.pid}\\s+${port}\\s+${moved.port}\\s+hub\\s+hub-server`))
      const lj = json((await cli('reassignments', '--since', '1h', '--json')).stdout) as unknown as {from: number}[]
      expect(lj.at(-1)).to.include({from: port})
      expect((await cli('log', '--since', 'yesterday-ish')).code).to.equal(2)
    } finally {
      await d.client.release(taken.id)
      await killAll([holder])
    }
  })

  it('instances and cleanup: human and --json', async () => {
    await d.client.registerInstance({id: 'agent-cli', name: 'claude-1'})
    expect((await cli('instances')).stdout).to.match(/^agent-cli\s+-\s+claude-1/m)
    const ij = json((await cli('instances', '--json')).stdout) as unknown as {id: string}[]
    expect(ij.map((i) => i.id)).to.include('agent-cli')
    const lease = json((await cli('allocate', '-s', 'monitoring', '--json')).stdout)
    const c = await cli('cleanup', '--force')
    expect(c.stdout).to.match(/Released \d+ lease/).and.contain(String(lease.port))
    const other = json((await cli('allocate', '-s', 'monitoring', '--json')).stdout)
    const cj = json((await cli('cleanup', '--force', '--json')).stdout)
    expect(cj.released.map((l: {id: string}) => l.id)).to.include(other.id)
    await d.client.removeInstance('agent-cli')
  })

  it('config edit opens $EDITOR on the file, then validates it', async () => {
    const file = path.join(d.home, 'config', 'styxy', 'config.json')
    const ok = await runCli(['config', 'edit'], {...d.env, EDITOR: 'true'})
    expect(ok.code, ok.stderr).to.equal(0)
    expect(ok.stdout).to.contain('valid')
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).to.deep.equal({serviceTypes: {}})
    const script = path.join(d.home, 'break.sh')
    fs.writeFileSync(script, '#!/bin/sh\necho "{oops" > "$1"\n', {mode: 0o755})
    const bad = await runCli(['config', 'edit'], {...d.env, EDITOR: script})
    expect(bad.code).to.equal(1)
    expect(bad.stderr).to.contain('not valid JSON')
    fs.rmSync(file)
  })

  it('errors are clear, JSON in --json mode, with consistent exit codes', async () => {
    const u = await cli('allocate', '-s', 'nope')
    expect(u.code).to.equal(4)
    expect(u.stderr).to.match(/unknown service type "nope"; valid types: dev, api/)
    expect(u.stderr).to.not.match(/\bat \w+ \(/) // no stack trace
    const uj = await cli('allocate', '-s', 'nope', '--json')
    expect(uj.code).to.equal(4)
    expect(json(uj.stdout).error).to.include({code: 'UNKNOWN_SERVICE'})
    const bad = await cli('check', '70000', '--json')
    expect(bad.code).to.equal(2)
    expect(json(bad.stdout).error.code).to.equal('USAGE')
    // A command that needs the daemon starts it (test/cli/daemon-rule.test.ts); one that cannot be started is exit 3.
    const home = tempHome()
    try {
      fs.writeFileSync(path.join(home, 'not-a-dir'), '')
      const down = await runCli(['list', '--json'], isolatedEnv(home, await freePort(), {STYXY_HOME: path.join(home, 'not-a-dir', 'state')}))
      expect(down.code).to.equal(3)
      expect(json(down.stdout).error.code).to.equal('DAEMON_START_FAILED')
      expect(json(down.stdout).error.message).to.contain('the daemon is not running and could not be started')
    } finally {
      removeHome(home)
    }
  })

  it('config show, path, validate', async () => {
    const p = await cli('config', 'path')
    expect(p.stdout.trim()).to.equal(path.join(d.home, 'config', 'styxy', 'config.json'))
    const show = await cli('config', 'show')
    expect(show.stdout).to.match(/^storybook\s+6006-6029\s+6006,6007,6008,6009\s+-\s+builtin$/m)
    const broken = path.join(d.home, 'broken.json')
    fs.writeFileSync(broken, JSON.stringify({serviceTypes: {web: {range: [7000], colour: 1}}}))
    const v = await cli('config', 'validate', broken)
    expect(v.code).to.equal(1)
    expect(v.stderr).to.contain('serviceTypes.web.range')
    const good = path.join(d.home, 'good.json')
    fs.writeFileSync(good, JSON.stringify({serviceTypes: {web: {range: [7000, 7099]}}}))
    expect(json((await cli('config', 'validate', good, '--json')).stdout)).to.include({valid: true, types: 18})
  })

  it('shell completion is available (bash)', async () => {
    const r = await cli('autocomplete', 'script', 'bash')
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.contain('STYXY_AC_BASH_SETUP_PATH').and.contain(path.join(d.home, 'cache', 'styxy'))
  })

  it('--help shows examples', async () => {
    const h = await cli('check', '--help')
    expect(h.stdout).to.contain('EXAMPLES').and.contain('styxy check 3000')
  })
})

describe('styxy doctor', () => {
  it('passes on a healthy set-up, and detects a broken socket permission and a missing library', async () => {
    const d = await startDaemon()
    try {
      const ok = await runCli(['doctor', '--json'], d.env)
      const report = json(ok.stdout)
      expect(report.checks.filter((c: {level: string}) => c.level === 'fail')).to.deep.equal([])
      expect(report.checks.find((c: {name: string}) => c.name === 'kernel interface')).to.include({level: 'pass'})
      fs.chmodSync(path.join(d.home, 'daemon.sock'), 0o666)
      const broken = await runCli(['doctor'], {...d.env, STYXY_PRELOAD_LIB: path.join(d.home, 'missing.so')})
      expect(broken.code).to.equal(6)
      expect(broken.stdout).to.match(/FAIL\s+socket permissions: .* is 0666/)
      expect(broken.stdout).to.match(/FAIL\s+interceptor library: .*missing\.so is missing/)
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })
})

describe('the kernel interface, named by status and doctor', () => {
  it('sock_diag and pidfd by default; a missing addon falls back to /proc and polling, and both commands say why', async () => {
    const missing = '/nonexistent/styxy_kernel.node'
    const [d, fallback] = await Promise.all([startDaemon(), startDaemon({env: {STYXY_KERNEL_ADDON: missing}})])
    try {
      const s = await runCli(['status', '--json'], d.env)
      expect(json(s.stdout).kernel).to.include({sockets: 'sock_diag', exits: 'pidfd', reason: null})
      expect((await runCli(['status'], d.env)).stdout).to.match(/kernel\s+sock_diag \(netlink\), exits by pidfd/)
      const f = await runCli(['status'], fallback.env)
      expect(f.stdout).to.match(/kernel\s+\/proc\/net\/tcp, exits by polling \(fallback: .*styxy_kernel\.node/)
      const doc = await runCli(['doctor'], fallback.env)
      expect(doc.stdout).to.match(/WARN\s+kernel interface: reading \/proc\/net\/tcp for listeners, polling for exits: .*styxy_kernel\.node/)
      // Still a working daemon: the fallback decides as well, only slower on a busy host.
      const port = (await fallback.client.suggest('test', 1)).ports[0]
      expect(await fallback.client.bind({pid: process.pid, port})).to.include({action: 'allow', port})
    } finally {
      await Promise.all([d.stop(), fallback.stop()])
      removeHome(d.home)
      removeHome(fallback.home)
    }
  })
})

describe('styxy tail', () => {
  it('prints events caused by another client in order, --json, and reconnects after a daemon restart', async () => {
    const d = await startDaemon()
    const child = spawn(process.execPath, [CLI, 'tail', '--json', '--type', 'lease'], {env: d.env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    const waitFor = (pred: (lines: Record<string, any>[]) => boolean) => new Promise<void>((resolve) => {
      const check = () => {
        const lines = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
        if (pred(lines)) {
          child.stdout.off('data', check)
          resolve()
        }
      }
      child.stdout.on('data', check)
    })
    child.stdout.on('data', (c) => (out += c))
    let again: TestDaemon | undefined
    try {
      // Readiness: the tail is subscribed once the daemon counts it.
      while ((await d.client.status()).eventSubscribers === 0) await new Promise((r) => setImmediate(r))
      const got2 = waitFor((l) => l.length >= 2)
      const lease = await d.client.allocate({service: 'ui'})
      await d.client.release(lease.id)
      await got2
      const lines = out.trim().split('\n').map((l) => JSON.parse(l))
      expect(lines.map((e) => e.type)).to.deep.equal(['lease.created', 'lease.released'])
      expect(lines[1].seq).to.equal(lines[0].seq + 1)
      await d.stop()
      again = await startDaemon({home: d.home, port: d.port})
      while ((await again.client.status()).eventSubscribers === 0) await new Promise((r) => setTimeout(r, 20))
      const got3 = waitFor((l) => l.length >= 3)
      await again.client.allocate({service: 'proxy'})
      await got3
      expect(JSON.parse(out.trim().split('\n')[2]).data.service).to.equal('proxy')
      child.kill('SIGINT')
      expect(await new Promise((r) => child.on('exit', (c) => r(c)))).to.equal(0)
    } finally {
      child.kill('SIGKILL')
      await again?.stop()
      await d.stop()
      removeHome(d.home)
    }
  })
})
