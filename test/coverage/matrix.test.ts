// The coverage matrix: each real server, its port taken, under each backend. Moved means the Styxy notice
// named a new port; served means an HTTP GET there (on every address family the server binds) answered 200.
// `make coverage` writes the table to docs/coverage.md (STYXY_COVERAGE_OUT); every run checks it.
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {PROJECT_ROOT} from '../../src/project.js'
import {chooseBackend, type Backend} from '../../src/cli/backend.js'
import {startDaemon, removeHome, CLI, type TestDaemon} from '../helpers/daemon.js'
import {listenOn, portOf, closeServer} from '../helpers/processes.js'
import {startProgram, httpGet, NOTICE, HTTPSTATIC, buildGoServe} from '../helpers/programs.js'

const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures')
const HTTPSERVE = path.join(PROJECT_ROOT, 'zig-out', 'bin', 'httpserve')
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

interface Row {
  name: string
  argv: (port: number) => string[]
  /** Families an HTTP GET must answer on. */
  hosts?: string[]
  /** Which backends cover it; the test fails if reality differs. */
  covered: Record<Backend, boolean>
  /** Why a backend doesn't cover it (shown in the table). */
  why: string
  /** Null when the row can run here, else why not. */
  missing?: () => string | null
}

interface Outcome {moved: boolean; served: boolean; detail: string}

describe('coverage matrix: real servers with their port taken, under each backend', function () {
  this.timeout(300_000)
  let d: TestDaemon
  let scratch: string
  const built: Record<string, string> = {}
  const rows: Row[] = []
  const results: {row: Row; auto?: Backend; outcome: Partial<Record<Backend, Outcome>>; skipped?: string}[] = []

  before(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'styxy-matrix-'))
    fs.writeFileSync(path.join(scratch, 'index.html'), '<h1>vite</h1>\n')
    const rust = has('rustc')
      ? new Promise<void>((resolve, reject) => {
        const r = spawnSync('rustc', ['-O', '-o', path.join(scratch, 'rustserve'), path.join(FIXTURES, 'rustserve.rs')], {encoding: 'utf8'})
        if (r.status === 0) resolve()
        else reject(new Error(`rustc failed: ${r.stderr}`))
      })
      : Promise.resolve()
    ;[d, built.goserve] = await Promise.all([startDaemon(), has('go') ? buildGoServe(scratch) : Promise.resolve(''), rust])
  })
  after(async () => {
    await d.stop()
    removeHome(d.home)
    fs.rmSync(scratch, {recursive: true, force: true})
    const out = process.env.STYXY_COVERAGE_OUT
    if (out) fs.writeFileSync(out, table())
  })

  const preloadOnly = (why: string) => ({covered: {preload: true, seccomp: true}, why})
  rows.push(
    {name: 'python3 -m http.server', argv: (p) => ['python3', '-m', 'http.server', String(p), '--bind', '127.0.0.1'], ...preloadOnly('')},
    {name: 'python asyncio, 127.0.0.1 and ::1', argv: (p) => ['python3', path.join(FIXTURES, 'asyncio_serve.py'), String(p)], hosts: ['127.0.0.1', '::1'], ...preloadOnly('')},
    {name: 'node http, default dual-stack (::)', argv: (p) => [process.execPath, '-e', `require('http').createServer((q, s) => s.end('node')).listen(${p})`], hosts: ['127.0.0.1', '::1'], ...preloadOnly('')},
    {name: 'node http on 127.0.0.1', argv: (p) => [process.execPath, '-e', `require('http').createServer((q, s) => s.end('node')).listen(${p}, '127.0.0.1')`], ...preloadOnly('')},
    {name: 'Vite dev server (--strictPort)', argv: (p) => [process.execPath, path.join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), scratch, '--port', String(p), '--host', '127.0.0.1', '--strictPort', '--clearScreen', 'false'], ...preloadOnly('')},
    {name: 'C binary (glibc, dynamic)', argv: (p) => [HTTPSERVE, String(p)], ...preloadOnly('')},
    {name: 'Rust binary (std::net)', argv: (p) => [path.join(scratch, 'rustserve'), String(p)], missing: () => (has('rustc') ? null : 'no rustc on this machine'), ...preloadOnly('')},
    {name: "Java's HttpServer (JDK)", argv: (p) => ['java', path.join(FIXTURES, 'JavaServe.java'), String(p)], hosts: ['127.0.0.1', '::1'], missing: () => (has('java') ? null : 'no JDK on this machine'), ...preloadOnly('')},
    {name: 'Go binary (net/http)', argv: (p) => [built.goserve, String(p)], missing: () => (has('go') ? null : 'no Go on this machine'), covered: {preload: false, seccomp: true}, why: "Go's runtime makes the bind system call itself; LD_PRELOAD never sees it"},
    {name: 'static binary (musl)', argv: (p) => [HTTPSTATIC, String(p)], covered: {preload: false, seccomp: true}, why: 'no dynamic loader, so LD_PRELOAD is never read'},
    {name: 'environment cleared (env -i python3 -m http.server)', argv: (p) => ['env', '-i', `PATH=${process.env.PATH}`, 'python3', '-m', 'http.server', String(p), '--bind', '127.0.0.1'], covered: {preload: false, seccomp: true}, why: 'env -i drops LD_PRELOAD before python starts'},
  )

  async function attempt(row: Row, backend: Backend, holder: net.Server): Promise<Outcome> {
    const taken = portOf(holder)
    const p = startProgram(process.execPath, [CLI, 'run', '--backend', backend, '--', ...row.argv(taken)], d.env, {preload: false})
    try {
      // The notice, or the program giving up on the taken port, whichever comes first.
      const first = await Promise.race([
        p.waitFor(NOTICE).then((m) => ({moved: Number(m[2])}), () => ({moved: 0})),
        p.exited.then(() => ({moved: 0})),
        new Promise<{moved: number}>((resolve) => setTimeout(() => resolve({moved: 0}), 20_000)),
      ])
      if (!first.moved) return {moved: false, served: false, detail: lastLine(p.stderr()) || 'no notice'}
      // Readiness to serve follows bind by a moment (a JIT, a dev server's start-up): ask until it answers.
      const hosts = row.hosts ?? ['127.0.0.1']
      const served = await Promise.all(hosts.map((h) => answersWithin(first.moved, h, 20_000)))
      return {moved: true, served: served.every(Boolean), detail: `${taken} -> ${first.moved}`}
    } finally {
      await p.stop()
    }
  }

  it('runs every row under both backends and matches the expected coverage', async () => {
    for (const row of rows) {
      const missing = row.missing?.()
      if (missing) {
        results.push({row, outcome: {}, skipped: missing})
        continue
      }
      const holders = await Promise.all([listenOn('127.0.0.1'), listenOn('127.0.0.1')])
      try {
        const [preload, seccomp] = await Promise.all([attempt(row, 'preload', holders[0]), attempt(row, 'seccomp', holders[1])])
        results.push({row, auto: chooseBackend(row.argv(1), process.env).backend, outcome: {preload, seccomp}})
      } finally {
        await Promise.all(holders.map(closeServer))
      }
    }
    const wrong = results.filter((r) => !r.skipped).flatMap((r) => (['preload', 'seccomp'] as Backend[])
      .filter((b) => (r.outcome[b]!.moved && r.outcome[b]!.served) !== r.row.covered[b])
      .map((b) => `${r.row.name} under ${b}: expected ${r.row.covered[b] ? 'covered' : 'not covered'}, got ${JSON.stringify(r.outcome[b])}`))
    expect(wrong, table()).to.deep.equal([])
    // auto must pick a backend that covers the row.
    const autoMisses = results.filter((r) => r.auto && !r.row.covered[r.auto]).map((r) => `${r.row.name}: auto picked ${r.auto}`)
    expect(autoMisses).to.deep.equal([])
  })

  function table(): string {
    const mark = (o?: Outcome) => (!o ? '-' : o.moved && o.served ? 'yes' : o.moved ? `moved, not served (${o.detail})` : `no: ${o.detail}`)
    const lines = [
      '# Coverage matrix',
      '',
      'Produced by `test/coverage/matrix.test.ts` (`make coverage` rewrites this file; `make test` checks the same',
      'expectations). Each server asks for a port a real listener already holds; "yes" means the Styxy notice named',
      'a new port and an HTTP GET there answered on every address family the server binds. `auto` is what',
      '`styxy run` picks without `--backend`.',
      '',
      '| server | auto picks | LD_PRELOAD | seccomp | why a backend misses it |',
      '|---|---|---|---|---|',
      ...results.map((r) => r.skipped
        ? `| ${r.row.name} | - | - | - | not run: ${r.skipped} |`
        : `| ${r.row.name} | ${r.auto} | ${mark(r.outcome.preload)} | ${mark(r.outcome.seccomp)} | ${r.row.why || '-'} |`),
      '',
      'Not in the table: setuid programs (neither backend changes them), 32-bit programs on a 64-bit kernel (the',
      'filter matches the native ABI and the library is built for it alone), and `shell-init`',
      'sessions, which use LD_PRELOAD alone.',
      '',
    ]
    return lines.join('\n')
  }
})

/** The program's last words, without this checkout's location (the table is committed). */
function lastLine(text: string): string {
  const line = text.trim().split('\n').pop() ?? ''
  return line.replaceAll(PROJECT_ROOT + '/', '').replaceAll(os.tmpdir(), '$TMPDIR').replace(/\d{4,5}/g, 'PORT').replace(/\|/g, '/').slice(0, 90)
}

async function answersWithin(port: number, host: string, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until;) {
    try {
      if ((await httpGet(port, host)).status === 200) return true
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}
