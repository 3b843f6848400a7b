import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {PROJECT_ROOT} from '../../src/project.js'
import {CLI, removeHome, runCommand, startDaemon, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {freePort} from '../helpers/processes.js'
import {startProgram, type Program} from '../helpers/programs.js'
import {fetchText, makeWorktree, startBackend, type Backend, type Worktree} from '../helpers/worktrees.js'

/**
 * Issue 19's proof with real programs: two git worktrees of one app, each running a backend on the same port
 * (python3 -m http.server serving a marker naming its worktree) and a Vite dev server whose proxy sends /api to
 * http://localhost:<that port>, all under the real library. B's backend is moved; B's frontend, and any client
 * under Styxy in B, still reach B's backend at the port it asked for. Everyone else reaches whoever holds it.
 */

const VITE = path.join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js')

function viteConfig(apiPort: number): string {
  return `export default {
  clearScreen: false,
  server: {proxy: {'/api': {target: 'http://localhost:${apiPort}', rewrite: (p) => p.replace(/^\\/api/, '')}}},
}
`
}

/** The client's environment: no proxy of the machine's may stand between it and loopback. */
function clientEnv(env: NodeJS.ProcessEnv, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {...env, ...extra}
  for (const k of Object.keys(out)) if (/^(https?|all|no)_proxy$/i.test(k)) delete out[k]
  return out
}

const PY_GET = 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end="")'

describe('connect-follow: clients of a project reach its moved server (real programs)', () => {
  let d: TestDaemon
  let a: Worktree
  let b: Worktree
  let outside: string
  let asked: number
  const backends: Backend[] = []
  const vites: {tree: Worktree; program: Program; port: number}[] = []

  /** A client run to completion from `cwd`; `preload` false runs it outside Styxy. */
  async function client(cmd: string, args: string[], cwd: string, opts: {preload?: boolean; env?: Record<string, string>} = {}) {
    const p = startProgram(cmd, args, clientEnv(d.env, opts.env), {preload: opts.preload, cwd})
    const {code} = await p.exited
    return {code, stdout: p.stdout(), stderr: p.stderr()}
  }
  const curl = (cwd: string, opts?: {preload?: boolean; env?: Record<string, string>}) =>
    client('curl', ['-sS', '--noproxy', '*', '--max-time', '5', `http://localhost:${asked}/whoami`], cwd, opts)
  const urllib = (cwd: string, opts?: {preload?: boolean; env?: Record<string, string>}) =>
    client('python3', ['-c', PY_GET, `http://localhost:${asked}/whoami`], cwd, opts)

  before(async function () {
    this.timeout(120_000)
    d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '600000'}})
    a = makeWorktree('A')
    b = makeWorktree('B')
    outside = fs.realpathSync(tempHome('styxy-no-project-'))
    asked = await freePort()
    backends.push(await startBackend(a, asked, d.env))
    backends.push(await startBackend(b, asked, d.env))
    const frontPort = await freePort()
    for (const tree of [a, b]) {
      fs.writeFileSync(path.join(tree.dir, 'index.html'), `<h1>frontend of worktree ${tree.name}</h1>\n`)
      fs.writeFileSync(path.join(tree.dir, 'vite.config.mjs'), viteConfig(asked))
      const program = startProgram(process.execPath, [VITE, '--port', String(frontPort), '--host', '127.0.0.1', '--strictPort'], clientEnv(d.env), {cwd: tree.dir})
      const m = await program.waitFor(/Local:\s+\S*http:\/\/127\.0\.0\.1:(\d+)/)
      vites.push({tree, program, port: Number(m[1])})
    }
  })
  after(async () => {
    for (const p of [...vites.map((v) => v.program), ...backends.map((x) => x.program)]) await p.stop()
    await d.stop()
    removeHome(d.home)
    for (const dir of [a.dir, b.dir, outside]) removeHome(dir)
  })

  it('the two backends asked for the same port: A has it, B was moved', () => {
    expect(backends[0].port).to.equal(asked)
    expect(backends[1].port).to.not.equal(asked)
  })

  it("each worktree's Vite frontend proxies /api to its own worktree's backend", async () => {
    expect(vites[0].port).to.not.equal(vites[1].port)
    for (const v of vites) {
      expect(await fetchText(v.port, '/'), `${v.tree.name}'s frontend`).to.contain(`frontend of worktree ${v.tree.name}`)
      expect(await fetchText(v.port, '/api/whoami'), `${v.tree.name}'s /api`).to.equal(v.tree.marker)
    }
  })

  it('curl and python urllib under the library reach their own worktree’s backend, from any directory of it', async () => {
    for (const tree of [a, b]) {
      for (const cwd of [tree.dir, path.join(tree.backend, 'src')]) {
        const c = await curl(cwd)
        expect(c.stdout, `curl in ${cwd}: ${c.stderr}`).to.equal(tree.marker)
        const u = await urllib(cwd)
        expect(u.stdout, `urllib in ${cwd}: ${u.stderr}`).to.equal(tree.marker)
      }
    }
  })

  it('a client in B says once on stderr that it followed; one in A (nothing to follow) says nothing', async () => {
    const inB = await urllib(b.dir)
    const follows = inB.stderr.split('\n').filter((l) => l.includes('STYXY'))
    expect(follows, inB.stderr).to.have.length(1)
    expect(follows[0]).to.contain(`localhost:${asked}`).and.contain(String(backends[1].port))
    expect((await urllib(a.dir)).stderr).to.not.contain('STYXY')
  })

  it('`styxy run` in B reaches B; STYXY_PROJECT (or run --project) makes any directory part of B', async () => {
    const run = await client(process.execPath, [CLI, 'run', '--', 'curl', '-sS', '--noproxy', '*', '--max-time', '5', `http://localhost:${asked}/whoami`], b.backend, {preload: false})
    expect(run.stdout, run.stderr).to.equal(b.marker)
    expect((await curl(outside, {env: {STYXY_PROJECT: b.dir}})).stdout).to.equal(b.marker)
    const named = await client(process.execPath, [CLI, 'run', '--project', b.dir, '--', 'python3', '-c', PY_GET, `http://localhost:${asked}/whoami`], outside, {preload: false})
    expect(named.stdout, named.stderr).to.equal(b.marker)
  })

  it('a client outside any project, or outside Styxy, reaches whoever holds the port (A)', async () => {
    expect((await curl(outside)).stdout).to.equal(a.marker)
    expect((await urllib(outside)).stdout).to.equal(a.marker)
    expect((await curl(b.dir, {preload: false})).stdout).to.equal(a.marker)
    expect((await urllib(b.dir, {preload: false})).stdout).to.equal(a.marker)
  })

  it('styxy tail shows a follow once per process and port: three connections of one client in B are one event; A’s clients none', async function () {
    this.timeout(60_000)
    const tail = startProgram(process.execPath, [CLI, 'tail'], d.env, {preload: false})
    try {
      // Subscribed once an event of ours shows (tail has no other signal): ask, look, ask again.
      for (let i = 0; !/instance\.registered/.test(tail.stdout()); i++) {
        await d.client.registerInstance({id: `tail-probe-${i}`})
        await Promise.race([tail.waitFor(/instance\.registered/), new Promise((r) => setTimeout(r, 250))])
      }
      const moved = backends[1].port
      const thrice = `import sys, urllib.request\nfor _ in range(3): print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())`
      const inB = startProgram('python3', ['-c', thrice, `http://localhost:${asked}/whoami`], clientEnv(d.env), {cwd: b.backend})
      const pid = inB.child.pid!
      await inB.exited
      expect(inB.stdout()).to.equal(`${b.marker}\n`.repeat(3))
      const line = new RegExp(`connect\\.followed\\s+:${moved}\\s+pid ${pid}\\s+followed ${asked} -> ${moved}.*in ${b.dir}$`, 'm')
      await Promise.race([tail.waitFor(line), new Promise((_r, reject) => setTimeout(() => reject(new Error(`no follow event of pid ${pid} within 15 s:\n${tail.stdout()}`)), 15_000))])
      const inA = await urllib(a.dir)
      expect(inA.stdout).to.equal(a.marker)
      // Whatever either client sent is in by now: the marker's event comes after it.
      await d.client.registerInstance({id: 'tail-marker'})
      await tail.waitFor(/instance\.registered.*tail-marker/)
      const follows = tail.stdout().split('\n').filter((l) => l.includes('connect.followed'))
      expect(follows.filter((l) => l.includes(`pid ${pid} `)), tail.stdout()).to.have.length(1)
      expect(follows.filter((l) => l.includes(a.dir)), tail.stdout()).to.deep.equal([])
    } finally {
      await tail.stop()
    }
  })

  it('styxy list shows the followed port', async () => {
    const list = await runCommand(process.execPath, [CLI, 'list'], d.env)
    expect(list.stdout).to.contain(`${backends[1].port} (asked ${asked})`).and.contain(`  ${asked} -> ${backends[1].port}  ${b.dir}`)
  })
})
