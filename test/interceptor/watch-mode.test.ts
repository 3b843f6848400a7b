import {expect} from 'chai'
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type WebSocket from 'ws'
import {PROJECT_ROOT} from '../../src/project.js'
import type {StyxyEvent} from '../../src/protocol/events.js'
import {CLI, removeHome, startDaemon, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {fetchText} from '../helpers/worktrees.js'

/**
 * The proof that watch mode keeps its port: real reloaders (node --watch, uvicorn --reload, Flask's debug
 * reloader, Django's runserver) under the real `styxy run`, each saved 20 times; after every save the server
 * must answer with the new marker on the port it asked for, and the daemon must never have moved it.
 *
 * The Python reloaders come from .tools/venv (`make venv`, a prerequisite of `make test`), pinned in
 * test/fixtures/reloaders/requirements.txt. node --watch and uvicorn (watchfiles) are told of a save by inotify;
 * Werkzeug's stat reloader and Django's StatReloader poll mtimes once a second (no watchdog, no pywatchman).
 *
 * A save is made only once the reloader will see it, which is not the same moment as the server answering:
 * a stat poller compares with the mtime it took on its first look, and Django's first look comes after the
 * server is up (a save just before it is missed for good: seen once in 20 saves). Each reloader's own signal:
 * Werkzeug looks before it serves (the answer is the signal); Django logs its first look at urls.py (the
 * fixture's settings show that one debug line); uvicorn's watchfiles watch starts once, ~0.25 s after the
 * reloader does (WATCHFILES_DEBUG prints "watcher: ..."), and outlives every restart; node --watch watches the
 * entry file before it starts the child.
 */

const VENV_PYTHON = path.join(PROJECT_ROOT, '.tools', 'venv', 'bin', 'python')
const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'reloaders')
const SAVES = Number(process.env.STYXY_WATCH_SAVES ?? 20)
/** A reloader polls about once a second, then starts an interpreter: 20 s is far past any honest restart. */
const SAVE_DEADLINE_MS = 20_000

interface Seen {
  ms: number
  e: StyxyEvent
}

/** Every event of the daemon from now on, with the time it arrived. */
async function record(d: TestDaemon): Promise<{seen: Seen[]; close(): void}> {
  const ws: WebSocket = d.client.events()
  const seen: Seen[] = []
  ws.on('message', (data: Buffer) => seen.push({ms: Date.now(), e: JSON.parse(data.toString()) as StyxyEvent}))
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  return {seen, close: () => ws.close()}
}

/** Poll the port until it answers `marker` (the readiness signal), within a bounded deadline. */
async function answers(port: number, marker: string, deadlineMs: number, describe: () => string): Promise<number> {
  const started = Date.now()
  let last: string | null = null
  while (Date.now() - started < deadlineMs) {
    last = await fetchText(port, '/')
    if (last === marker) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`port ${port} did not answer "${marker}" within ${deadlineMs} ms (last answer: ${JSON.stringify(last)})\n${describe()}`)
}

/** `styxy run -- argv` in its own process group (a reloader and its children), from `cwd`. */
class Run {
  readonly child: ChildProcess
  out = ''
  readonly closed: Promise<void>
  constructor(argv: string[], cwd: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [CLI, 'run', '--', ...argv], {cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
    this.child.stdout!.on('data', (c) => (this.out += c))
    this.child.stderr!.on('data', (c) => (this.out += c))
    this.closed = new Promise((resolve) => this.child.once('close', () => resolve()))
  }

  private groupAlive(): boolean {
    try {
      process.kill(-this.child.pid!, 0)
      return true
    } catch {
      return false
    }
  }

  /** SIGTERM to the whole group (a reloader's parent does not always take its child down), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (!this.groupAlive()) return
    process.kill(-this.child.pid!, 'SIGTERM')
    const deadline = Date.now() + 10_000
    while (this.groupAlive() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
    if (this.groupAlive()) process.kill(-this.child.pid!, 'SIGKILL')
    await this.closed
  }

  /** Resolve once `re` matches the output written from `from` on, within a bounded deadline. */
  printed(re: RegExp, from: number, deadlineMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!re.test(this.out.slice(from))) return false
        done()
        resolve()
        return true
      }
      const timer = setTimeout(() => { done(); reject(new Error(`no ${re} within ${deadlineMs} ms:\n${this.tail()}`)) }, deadlineMs)
      const done = () => {
        clearTimeout(timer)
        this.child.stdout!.off('data', check)
        this.child.stderr!.off('data', check)
      }
      this.child.stdout!.on('data', check)
      this.child.stderr!.on('data', check)
      check()
    })
  }

  /** The output's end, without the request log lines of the polling. */
  tail(n = 4000): string {
    return this.out.split('\n').filter((l) => !/"GET \/ HTTP\/1\.[01]"/.test(l)).join('\n').slice(-n)
  }
}

/** A managed port nothing listens on or leases, drawn at random: other test runs on this machine start at a range's head. */
async function freeManagedPort(d: TestDaemon, avoid: number[] = []): Promise<number> {
  const {ports} = await d.client.suggest('build', 40)
  const choices = ports.filter((p) => !avoid.includes(p))
  return choices[Math.floor(Math.random() * choices.length)]
}

function summary(times: number[]): string {
  const s = [...times].sort((a, b) => a - b)
  const total = times.reduce((a, b) => a + b, 0)
  return `${times.length} saves in ${(total / 1000).toFixed(1)} s: min ${s[0]} ms, median ${s[Math.floor(s.length / 2)]} ms, max ${s[s.length - 1]} ms`
}

function eventLines(seen: Seen[], t0: number, port?: number): string {
  return seen
    .filter(({e}) => port === undefined || ('data' in e && typeof e.data === 'object' && e.data !== null && [(e.data as {port?: number}).port, (e.data as {requestedPort?: number}).requestedPort].includes(port)))
    .map(({ms, e}) => {
      const d = e.data as Record<string, unknown>
      const what = e.type.startsWith('bind.') ? `pid ${d.pid} asked ${d.requestedPort} got ${d.port}`
        : e.type.startsWith('lease.') ? `port ${d.port} pid ${d.pid}${d.reason ? ` (${String(d.reason)})` : ''}` : ''
      return `  +${ms - t0} ms ${e.type} ${what}`
    }).join('\n')
}

interface Stack {
  name: string
  /** Python stacks need the venv (and Django needs Django in it). */
  python?: string
  /** Lay the app out in `dir`. */
  setUp(dir: string): void
  /** The watched file, relative to the app's folder. */
  watched: string
  /** The watched file's text for a marker. */
  render(marker: string): string
  argv(port: number): string[]
  env?: Record<string, string>
  /** What the reloader prints once it will see the next save: once for good, or again after every restart. */
  watching?: {line: (dir: string) => RegExp; after: 'start' | 'each restart'}
  /** The reloader's own words for which watcher it runs: the one the test means to prove. */
  reloader?: RegExp
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

const fixtureWithMarker = (file: string) => (marker: string) => {
  const text = fs.readFileSync(path.join(FIXTURES, file), 'utf8')
  expect(text, file).to.contain('MARKER = "start"')
  return text.replace('MARKER = "start"', `MARKER = ${JSON.stringify(marker)}`)
}

const NODE_SERVER = (marker: string) => [
  "import http from 'node:http'",
  `const MARKER = ${JSON.stringify(marker)}`,
  'const server = http.createServer((req, res) => res.end(MARKER))',
  "server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`listening ${server.address().port} ${MARKER}`))",
  '',
].join('\n')

const STACKS: Stack[] = [
  {
    name: 'node --watch',
    setUp: () => {},
    watched: 'server.mjs',
    render: NODE_SERVER,
    argv: () => [process.execPath, '--watch', 'server.mjs'],
  },
  {
    name: 'uvicorn --reload (watchfiles)',
    python: 'uvicorn',
    setUp: () => {},
    watched: 'uvicorn_app.py',
    render: fixtureWithMarker('uvicorn_app.py'),
    argv: (port) => [VENV_PYTHON, '-m', 'uvicorn', 'uvicorn_app:app', '--reload', '--no-access-log', '--host', '127.0.0.1', '--port', String(port)],
    env: {WATCHFILES_DEBUG: '1'},
    watching: {line: () => /^watcher: INotifyWatcher/m, after: 'start'},
    reloader: /Started reloader process \[\d+\] using WatchFiles/,
  },
  {
    name: 'flask --debug run (Werkzeug stat reloader)',
    python: 'flask',
    setUp: () => {},
    watched: 'flask_app.py',
    render: fixtureWithMarker('flask_app.py'),
    argv: (port) => [VENV_PYTHON, '-m', 'flask', '--app', 'flask_app', '--debug', 'run', '--host', '127.0.0.1', '--port', String(port)],
    reloader: /Restarting with stat/,
  },
  {
    name: 'django runserver (StatReloader)',
    python: 'django',
    setUp: (dir) => {
      for (const f of ['manage.py', 'settings.py']) fs.copyFileSync(path.join(FIXTURES, 'django_app', f), path.join(dir, f))
    },
    watched: 'urls.py',
    render: fixtureWithMarker(path.join('django_app', 'urls.py')),
    argv: (port) => [VENV_PYTHON, 'manage.py', 'runserver', `127.0.0.1:${port}`],
    watching: {line: (dir) => new RegExp(`^File ${escape(path.join(dir, 'urls.py'))} first seen with mtime`, 'm'), after: 'each restart'},
    reloader: /Watching for file changes with StatReloader/,
  },
]

/** Skip only when the venv (or a package in it) is missing, and say so; `make test` makes it, so CI fails instead. */
function needPython(ctx: Mocha.Context, module: string): void {
  const missing = !fs.existsSync(VENV_PYTHON) ? `${VENV_PYTHON} is missing`
    : spawnSync(VENV_PYTHON, ['-c', `import ${module}`]).status !== 0 ? `${module} is not installed in ${path.dirname(path.dirname(VENV_PYTHON))}` : null
  if (missing === null) return
  const message = `${missing}: run \`make venv\` (make test does)`
  if (process.env.CI) throw new Error(message)
  console.warn(`      SKIPPED: ${message}`)
  ctx.test!.title += ` (SKIPPED: ${message})`
  ctx.skip()
}

const PY_ENV = {PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1'}

describe('watch mode keeps its port: real reloaders saved again and again under styxy run', function () {
  let d: TestDaemon
  const runs: Run[] = []
  const dirs: string[] = []
  // No reaper (10 minutes): a restarted server's old lease can only go by its holder's exit event (or by the
  // bind that finds its holder dead), which is what a restart must not wait for.
  before(async () => { d = await startDaemon({env: {STYXY_REAP_INTERVAL_MS: '600000'}}) })
  afterEach(async () => {
    await Promise.all(runs.splice(0).map((r) => r.stop()))
    for (const dir of dirs.splice(0)) removeHome(dir)
  })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  for (const stack of STACKS) {
    it(`${stack.name}: ${SAVES} saves, every answer new and on the port asked for, never moved`, async function () {
      this.timeout(60_000 + SAVES * SAVE_DEADLINE_MS)
      if (stack.python) needPython(this, stack.python)
      const dir = fs.realpathSync(tempHome('styxy-watch-'))
      dirs.push(dir)
      stack.setUp(dir)
      const file = path.join(dir, stack.watched)
      const marker = (i: number) => `${stack.name.split(' ')[0]}-${i}`
      fs.writeFileSync(file, stack.render(marker(0)))
      const port = await freeManagedPort(d)
      const events = await record(d)
      const t0 = Date.now()
      const run = new Run(stack.argv(port), dir, {...d.env, ...(stack.python ? PY_ENV : {}), ...stack.env, PORT: String(port)})
      runs.push(run)
      const describe = () => `styxy run output:\n${run.tail()}\ndaemon events for ${port}:\n${eventLines(events.seen, t0, port)}`
      try {
        const first = await answers(port, marker(0), 30_000, describe)
        const times: number[] = []
        const rounds: number[] = []
        let since = 0
        for (let i = 1; i <= SAVES; i++) {
          const round = Date.now()
          if (stack.watching) await run.printed(stack.watching.line(dir), since, SAVE_DEADLINE_MS)
          if (stack.watching?.after === 'each restart') since = run.out.length
          const saved = Date.now()
          fs.writeFileSync(file, stack.render(marker(i)))
          await answers(port, marker(i), SAVE_DEADLINE_MS, () => `after save ${i} (+${saved - t0} ms):\n${describe()}`)
          times.push(Date.now() - saved)
          rounds.push(Date.now() - round)
        }
        if (stack.reloader) expect(run.out, 'the reloader meant').to.match(stack.reloader)
        const binds = events.seen.filter(({e}) => e.type.startsWith('bind.'))
        const remapped = binds.filter(({e}) => e.type === 'bind.remapped' || e.type === 'bind.denied')
        expect(remapped.map(({e}) => e), `moved or refused:\n${describe()}`).to.deep.equal([])
        // Every bind it made asked for this port and got it.
        const allowed = binds.filter(({e}) => e.type === 'bind.allowed')
        expect(allowed.length, describe()).to.be.greaterThan(0)
        for (const {e} of allowed) expect(e.type === 'bind.allowed' && [e.data.requestedPort, e.data.port], describe()).to.deep.equal([port, port])
        const released = events.seen.filter(({e}) => e.type === 'lease.released' && e.data.port === port)
        // From an old server's lease released to its successor's bind: the successor's own start-up, nothing waited for.
        const gaps = released.map(({ms}) => (events.seen.find((x) => x.ms >= ms && x.e.type === 'lease.created' && x.e.data.port === port)?.ms ?? NaN) - ms)
        console.log(`      ${stack.name} on ${port}: ready in ${first} ms; save to new answer: ${summary(times)}; whole rounds (with the wait for the reloader's look): ${summary(rounds)}; ${allowed.length} binds allowed, ${released.length} leases released (${[...new Set(released.map(({e}) => e.type === 'lease.released' && e.data.reason))].join(', ') || 'none'})${gaps.length ? `, each ${summary(gaps).replace(/^.*?: /, '')} before the next bind` : ''}, 0 moved`)
      } finally {
        events.close()
      }
    })
  }

  it(`two worktrees of one app asking for the same port, saved alternately: each keeps its own port`, async function () {
    const rounds = Number(process.env.STYXY_WATCH_ROUNDS ?? 5)
    this.timeout(60_000 + rounds * 2 * SAVE_DEADLINE_MS)
    const trees = ['A', 'B'].map((name) => {
      const dir = fs.realpathSync(tempHome(`styxy-worktree-${name}-`))
      dirs.push(dir)
      const git = spawnSync('git', ['init', '-q', dir], {encoding: 'utf8'})
      expect(git.status, git.stderr).to.equal(0)
      return {name, dir, file: path.join(dir, 'server.mjs'), run: undefined as Run | undefined, port: 0}
    })
    const [a, b] = trees
    const marker = (t: typeof a, i: number) => `${t.name}-${i}`
    const port = await freeManagedPort(d)
    const events = await record(d)
    const t0 = Date.now()
    const describe = () => trees.map((t) => `${t.name} (${t.dir}) output:\n${t.run?.tail(2000) ?? ''}`).join('\n') + `\nevents:\n${eventLines(events.seen, t0)}`
    const start = (t: typeof a) => {
      fs.writeFileSync(t.file, NODE_SERVER(marker(t, 0)))
      t.run = new Run([process.execPath, '--watch', 'server.mjs'], t.dir, {...d.env, PORT: String(port)})
      runs.push(t.run)
    }
    try {
      start(a)
      await answers(port, marker(a, 0), 30_000, describe)
      a.port = port
      start(b)
      // B asked for A's port: a real move, to the port the daemon tells of.
      const deadline = Date.now() + 30_000
      let moved: StyxyEvent | undefined
      while (!(moved = events.seen.find(({e}) => e.type === 'bind.remapped' && e.data.project === b.dir)?.e) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      expect(moved, `B was not moved:\n${describe()}`).to.not.equal(undefined)
      b.port = moved!.type === 'bind.remapped' ? moved!.data.to : 0
      expect(b.port).to.not.equal(port)
      await answers(b.port, marker(b, 0), 30_000, describe)
      const times: number[] = []
      for (let i = 1; i <= rounds; i++) {
        for (const [t, other] of [[a, b], [b, a]] as const) {
          const saved = Date.now()
          fs.writeFileSync(t.file, NODE_SERVER(marker(t, i)))
          await answers(t.port, marker(t, i), SAVE_DEADLINE_MS, () => `round ${i}, save ${t.name} (+${saved - t0} ms):\n${describe()}`)
          times.push(Date.now() - saved)
          // The other one was not touched: still its own answer on its own port.
          const otherMarker = marker(other, other === a ? i : i - 1)
          expect(await fetchText(other.port, '/'), `round ${i}, after saving ${t.name}: ${other.name} on ${other.port}\n${describe()}`).to.equal(otherMarker)
        }
      }
      const binds = events.seen.filter(({e}) => e.type.startsWith('bind.')).map(({e}) => e)
      expect(binds.filter((e) => e.type === 'bind.denied'), describe()).to.deep.equal([])
      // A was never moved; B was moved every time it started (A holds the port it asks for), always to the same port.
      const remaps = binds.filter((e) => e.type === 'bind.remapped')
      for (const e of remaps) expect(e.type === 'bind.remapped' && [e.data.project, e.data.from, e.data.to], describe()).to.deep.equal([b.dir, port, b.port])
      expect(remaps.length, describe()).to.be.at.least(rounds + 1)
      const allowed = binds.filter((e) => e.type === 'bind.allowed')
      for (const e of allowed) expect(e.type === 'bind.allowed' && [e.data.requestedPort, e.data.port], describe()).to.deep.equal([port, port])
      expect(allowed.length, describe()).to.be.at.least(rounds + 1)
      console.log(`      A on ${a.port}, B moved to ${b.port}: ${rounds} rounds, ${summary(times)}; ${allowed.length} binds allowed (A), ${remaps.length} moved (B, all to ${b.port})`)
    } finally {
      events.close()
    }
  })
})
