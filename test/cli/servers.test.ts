import {expect} from 'chai'
import {startDaemon, removeHome, runCli, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, freePort, listenOn, portOf} from '../helpers/processes.js'
import {httpGet, NOTICE, startProgram, type Program} from '../helpers/programs.js'
import {makeWorktree} from '../helpers/projects.js'

// Servers run with their working directory at their worktree's top: the project recorded for their binds is
// then the worktree whether the daemon stores the raw cwd (until issue 19's daemon change) or its worktree.

const json = (s: string) => JSON.parse(s) as any

describe('CLI: servers by project (list, stop, allocate -n)', () => {
  let d: TestDaemon
  let a: string
  let b: string
  const programs: Program[] = []
  before(async () => {
    d = await startDaemon()
    a = makeWorktree('styxy-wt-a-')
    b = makeWorktree('styxy-wt-b-')
  })
  afterEach(async () => { await Promise.all(programs.splice(0).map((p) => p.stop())) })
  after(async () => {
    await d.stop()
    for (const dir of [d.home, a, b]) removeHome(dir)
  })
  const cli = (cwd: string, ...args: string[]) => runCli(args, d.env, undefined, cwd)
  const python = (cwd: string, port: number, extra: {detached?: boolean} = {}) => {
    const py = startProgram('python3', ['-u', '-m', 'http.server', String(port), '--bind', '127.0.0.1'], d.env, {cwd, detached: extra.detached ?? true})
    programs.push(py)
    return py
  }

  it('list shows project and command by default; --here and --project filter to one worktree', async () => {
    // Two worktrees run the same command on the same port: B's is moved, and only the project tells them apart.
    const port = (await d.client.suggest('hub', 1)).ports[0]
    const pa = python(a, port)
    await pa.waitFor(/Serving HTTP/)
    const pb = python(b, port)
    const [, , moved] = await pb.waitFor(NOTICE)
    await pb.waitFor(/Serving HTTP/)
    const all = await cli(a, 'list')
    expect(all.code, all.stderr).to.equal(0)
    expect(all.stdout).to.match(/^PORT\s+SERVICE\s+URL\s+HOLDER\s+PROJECT\s+COMMAND$/m)
    expect(all.stdout).to.match(new RegExp(`^${port}\\s+hub\\s+http://hub\\.\\S+\\.localhost:\\d+/\\s+pid ${pa.child.pid}\\s+${a}\\s+python3 -u -m http.server ${port}`, 'm'))
    expect(all.stdout).to.match(new RegExp(`^${moved} \\(asked ${port}\\)\\s+hub\\s+http://hub\\.\\S+\\.localhost:\\d+/\\s+pid ${pb.child.pid}\\s+${b}\\s+python3 -u -m http.server ${port}`, 'm'))
    const here = await cli(a, 'list', '--here')
    expect(here.stdout).to.contain(`pid ${pa.child.pid}`).and.not.contain(`pid ${pb.child.pid}`)
    const there = json((await cli(a, 'list', '--project', b, '--json')).stdout) as {pid: number; project: string}[]
    expect(there.map((l) => l.pid)).to.deep.equal([pb.child.pid])
    const dot = json((await cli(b, 'list', '--project', '.', '--json')).stdout) as {pid: number}[]
    expect(dot.map((l) => l.pid)).to.deep.equal([pb.child.pid])
  })

  it('stop PORT: by the port it asked for, its process group gets SIGTERM, and it says what it stopped', async () => {
    const held = await listenOn('127.0.0.1', (await d.client.suggest('hub', 1)).ports[0])
    const asked = portOf(held)
    try {
      // A tree, as `npm run dev` makes one: a shell and its server in one process group.
      const sh = startProgram('sh', ['-c', `python3 -u -m http.server ${asked} --bind 127.0.0.1 & wait`], d.env, {cwd: a, detached: true})
      programs.push(sh)
      const [, , moved] = await sh.waitFor(NOTICE)
      await sh.waitFor(/Serving HTTP/)
      const r = await cli(a, 'stop', String(asked))
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stdout).to.match(new RegExp(`^Stopped "hub\\.[a-z0-9-]+" hub server on port ${moved} \\(asked ${asked}\\): pid \\d+ \\S*python3 -u -m http.server ${asked} .*; process group ${sh.child.pid} \\(2 processes\\) ended on SIGTERM`))
      expect(await sh.exited).to.deep.equal({code: null, signal: 'SIGTERM'})
      expect(await httpGet(Number(moved)).then(() => 'answered', (e: NodeJS.ErrnoException) => e.code)).to.equal('ECONNREFUSED')
      // What is left on the asked port is this test's own listener: the stopper's parent is never signalled.
      const parent = await cli(a, 'stop', String(asked))
      expect(parent.code).to.equal(4)
      expect(parent.stderr).to.contain(`pid ${process.pid} (port ${asked}) is this very process or one of its parents`)
    } finally {
      await closeServer(held)
    }
    const none = await cli(a, 'stop', String(asked))
    expect(none.code).to.equal(4)
    expect(none.stderr).to.contain(`no server asking for port ${asked} in any project`)
  })

  it('stop NAME: a named lease held by whoever listens on it; SIGKILL after the grace period for one that ignores SIGTERM', async () => {
    const lease = json((await cli(a, 'allocate', '-s', 'test', '-n', 'stubborn', '--json')).stdout)
    const script = `import signal, http.server\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ns = http.server.HTTPServer(("127.0.0.1", ${lease.port}), http.server.SimpleHTTPRequestHandler)\nprint("serving", flush=True)\ns.serve_forever()`
    const py = startProgram('python3', ['-c', script], d.env, {cwd: a, detached: true, preload: false})
    programs.push(py)
    await py.waitFor(/serving/)
    try {
      const started = Date.now()
      const r = await cli(a, 'stop', 'stubborn', '--grace', '1', '--json')
      expect(r.code, r.stderr).to.equal(0)
      expect(Date.now() - started).to.be.above(1000)
      expect(json(r.stdout)).to.deep.include({pgid: py.child.pid, signal: 'SIGKILL', pids: [py.child.pid]})
      expect(await py.exited).to.deep.equal({code: null, signal: 'SIGKILL'})
    } finally {
      py.child.kill('SIGKILL')
      await d.client.release(lease.id)
    }
  })

  it('allocate -n NAME twice in one project returns the same lease; another project gets its own', async () => {
    const first = json((await cli(a, 'allocate', '-s', 'docs', '-n', 'site', '--json')).stdout)
    const again = await cli(a, 'allocate', '-s', 'docs', '-n', 'site')
    expect(again.code, again.stderr).to.equal(0)
    expect(again.stdout).to.contain(`${first.port} (the existing lease ${first.id} named site in this project, docs)`)
    const otherProject = json((await cli(b, 'allocate', '-s', 'docs', '-n', 'site', '--json')).stdout)
    expect(otherProject.id).to.not.equal(first.id)
    expect(otherProject.project).to.equal(b)
    const named = (await d.client.leases()).filter((l) => l.name === 'site')
    expect(named.map((l) => l.project).sort()).to.deep.equal([a, b].sort())
    const clash = await cli(a, 'allocate', '-s', 'api', '-n', 'site')
    expect(clash.code).to.equal(4)
    expect(clash.stderr).to.contain('the name "site" is already the docs lease')
    for (const l of named) await d.client.release(l.id)
  })

  it('stop refuses nothing of this user: a server of another project is found by the port it has', async () => {
    const py = python(b, await freePort())
    const [, port] = await py.waitFor(/Serving HTTP on \S+ port (\d+)/)
    const r = await cli(a, 'stop', port)
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.match(new RegExp(`Stopped "[a-z0-9-]+" dev server on port ${port}`))
    expect(await py.exited).to.deep.equal({code: null, signal: 'SIGTERM'})
  })
})
