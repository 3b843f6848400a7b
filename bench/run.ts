// `make bench`: every target measured next to its baseline in the same run, printed as absolute figures
// and ratios (these machines are shared and noisy: ratios travel better than milliseconds).
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import {PROJECT_ROOT} from '../src/project.js'
import {startDaemon, removeHome, tempHome, isolatedEnv, CLI} from '../test/helpers/daemon.js'
import {spawnHolder, killAll, freePort} from '../test/helpers/processes.js'
import {BINDPROBE, LIB, SUPERVISOR} from '../test/helpers/programs.js'

const BINDBENCH = path.join(path.dirname(BINDPROBE), 'bindbench')
const ASKBENCH = path.join(path.dirname(BINDPROBE), 'askbench')
const quick = process.env.STYXY_BENCH_QUICK === '1'
const N = quick ? 300 : 2000

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]
}
const f = (x: number, d = 1) => x.toFixed(d)
const rows: string[][] = []
const row = (...cells: string[]) => {
  rows.push(cells)
  console.log(cells.join(' | '))
}

function post(target: {socketPath: string} | {host: string; port: number; token?: string}, body: object): Promise<number> {
  const payload = JSON.stringify(body)
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload))}
    const base = 'socketPath' in target ? {socketPath: target.socketPath, headers: {...headers, host: 'localhost'}}
      : {host: target.host, port: target.port, headers: {...headers, host: `${target.host}:${target.port}`, ...(target.token ? {authorization: `Bearer ${target.token}`} : {})}}
    const req = http.request({...base, method: 'POST', path: '/v1/bind', agent: false}, (res) => {
      res.resume()
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`))
        else resolve(Number(process.hrtime.bigint() - started) / 1000)
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

async function series(n: number, one: (i: number) => Promise<number>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(await one(i))
  return out
}

function rssMb(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)
  return m ? Number(m[1]) / 1024 : NaN
}

type Bench = {p50: number; p99: number; failed: number}

/** Rounds of one series: the median of the rounds' percentiles (each round is the same size), failures summed. */
function combine(rounds: Bench[]): Bench {
  const mid = (xs: number[]) => median(xs)
  return {p50: mid(rounds.map((r) => r.p50)), p99: mid(rounds.map((r) => r.p99)), failed: rounds.reduce((a, r) => a + r.failed, 0)}
}

/**
 * `under`: a command to run bindbench through (the seccomp supervisor and its arguments). `gapUs`: a pause after
 * each bind, so each finds the machine idle.
 */
function bindbench(n: number, first: number, env: NodeJS.ProcessEnv, under: string[] = [], gapUs = 0): {p50: number; p99: number; failed: number} {
  const argv = [...under, BINDBENCH, String(n), String(first), String(gapUs)]
  const r = spawnSync(argv[0], argv.slice(1), {env, encoding: 'utf8'})
  const m = r.stdout.match(/p50_us ([\d.]+) p99_us ([\d.]+) failed (\d+)/)
  if (!m) throw new Error(`bindbench: ${r.stdout} ${r.stderr}`)
  return {p50: Number(m[1]), p99: Number(m[2]), failed: Number(m[3])}
}

/** How long the interceptor keeps its CPU while its answer is on the way (interceptor/ipc.zig, spin_ns). */
const INTERCEPTOR_SPIN_US = 500

/**
 * One C client asking `socket` in turn, waiting for each answer as the interceptor does: a lone request's
 * round trip. `gapUs`: a pause after each request.
 */
function askLone(n: number, socket: string, pid: number, gapUs = 0): Bench {
  const r = spawnSync(ASKBENCH, [socket, String(n), '1', String(pid), String(gapUs), String(INTERCEPTOR_SPIN_US)], {encoding: 'utf8'})
  const m = /asked \d+ failed (\d+)\np50_us ([\d.]+) p99_us ([\d.]+)/.exec(r.stdout)
  if (!m) throw new Error(`askbench: ${r.stdout} ${r.stderr}`)
  return {p50: Number(m[2]), p99: Number(m[3]), failed: Number(m[1])}
}

/**
 * CPU time the hypervisor gave to other guests (/proc/stat "steal"), as a share of all CPU time since `from`.
 * A vCPU taken away for a while stalls whatever runs on it: the slow stretches of this machine are these.
 */
function cpuTimes(): {steal: number; total: number} {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  return {steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0)}
}
function stealSince(from: {steal: number; total: number}): string {
  const now = cpuTimes()
  return `${f((100 * (now.steal - from.steal)) / Math.max(1, now.total - from.total), 1)}% of CPU time stolen by the hypervisor meanwhile`
}

function median(xs: number[]): number {
  return pct(xs, 50)
}

function timeCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, runs: number): number[] {
  const out: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint()
    const r = spawnSync(cmd, args, {env, stdio: 'ignore'})
    if (r.status !== 0 && !(args.includes('check'))) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`)
    out.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return out
}

// What this bench started is stopped however it ends: Ctrl-C, or `| head` closing stdout, used to leave its
// daemon running with nobody to stop it.
const ours = new Set<ChildProcess>()
function stopStarted(code: number): never {
  for (const c of ours) c.kill('SIGTERM')
  process.exit(code)
}
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => stopStarted(130))
process.stdout.on('error', () => stopStarted(1))

async function main(): Promise<void> {
  console.log(`# styxy bench (${quick ? 'quick' : 'full'}; ${N} requests per series; node ${process.version})\n`)
  const holder = spawnHolder()
  // The sections before the 10,000-lease one lease ~25,000 ports to this one; it goes (and its leases with it)
  // before that section, whose baseline is this daemon with few leases.
  const scratch = spawnHolder()
  ours.add(holder)
  ours.add(scratch)
  // Production timings (the test helper's reaper runs every 200 ms), but nothing is reaped mid-run.
  const d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '3600000', STYXY_REAP_INTERVAL_MS: '1000'}})
  ours.add(d.child)
  const token = fs.readFileSync(path.join(d.home, 'token'), 'utf8').trim()
  const baseHome = tempHome('styxy-bench-')
  const baseline = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'bench', 'baseline-server.js'), path.join(baseHome, 'b.sock')], {stdio: ['ignore', 'pipe', 'inherit']})
  ours.add(baseline)
  const basePort = await new Promise<number>((resolve) => baseline.stdout!.on('data', (c: Buffer) => resolve(Number(/ready (\d+)/.exec(c.toString())![1]))))
  const unix = {socketPath: path.join(d.home, 'daemon.sock')}
  const tcp = {host: '127.0.0.1', port: d.port, token}
  const baseUnix = {socketPath: path.join(baseHome, 'b.sock')}
  const baseTcp = {host: '127.0.0.1', port: basePort}
  const reqOf = (pid: number, port: number) => ({pid, port, command: 'bench'})
  const req = (port: number) => reqOf(scratch.pid!, port)
  try {
    console.log('## Bind route, a new connection per request (as the interceptor does)\n')
    console.log('what | p50 µs | p99 µs | p50 ratio to bare node:http')
    // Warm both processes' JIT before measuring, on both transports.
    await series(200, (i) => post(unix, req(12000 + (i % 50))))
    await series(200, (i) => post(tcp, req(12100 + (i % 50))))
    await series(200, () => post(baseUnix, req(1)))
    await series(200, () => post(baseTcp, req(1)))
    const bu = await series(N, () => post(baseUnix, req(1)))
    const du = await series(N, (i) => post(unix, req(20000 + i)))
    const bt = await series(N, () => post(baseTcp, req(1)))
    const dt = await series(N, (i) => post(tcp, req(24000 + i)))
    row('bare node:http, Unix socket', f(pct(bu, 50)), f(pct(bu, 99)), '1.00')
    row('styxy /v1/bind, daemon\'s Unix socket', f(pct(du, 50)), f(pct(du, 99)), f(pct(du, 50) / pct(bu, 50), 2) + ' (target <= 1.5)')
    row('bare node:http, TCP', f(pct(bt, 50)), f(pct(bt, 99)), '1.00')
    row('styxy /v1/bind, TCP + token', f(pct(dt, 50)), f(pct(dt, 99)), f(pct(dt, 50) / pct(bt, 50), 2))

    console.log('\n## Decisions per second, 4 concurrent clients over the Unix socket\n')
    // Four C clients, each asking the route as the interceptor does (its exact request, a new connection each,
    // a new port each: every answer a new lease). They cost the machine little, so the figure is the server's
    // capacity, not the client's; the bare server gets the same clients. Five rounds alternate between the two,
    // and the median round of each is kept: a slow stretch of this shared machine then falls on both, and one
    // slow round moves neither median.
    const per = quick ? 200 : 600
    const ask = (socketPath: string, first: number) => Promise.all([0, 1, 2, 3].map((i) => new Promise<void>((resolve, reject) => {
      const p = spawn(ASKBENCH, [socketPath, String(per), String(first + i * per), String(scratch.pid)], {stdio: ['ignore', 'pipe', 'inherit']})
      let out = ''
      p.stdout!.on('data', (c: Buffer) => (out += c))
      p.on('close', (code) => (code === 0 && / failed 0$/m.test(out) ? resolve() : reject(new Error(`askbench: ${code} ${out}`))))
    })))
    const perSecond = async (socketPath: string, first: number) => {
      const t0 = process.hrtime.bigint()
      await ask(socketPath, first)
      return (4 * per) / (Number(process.hrtime.bigint() - t0) / 1e9)
    }
    await perSecond(baseUnix.socketPath, 1)
    const stealAtRates = cpuTimes()
    const bareRates: number[] = []
    const socketRates: number[] = []
    for (let r = 0; r < 3; r++) {
      bareRates.push(await perSecond(baseUnix.socketPath, 1))
      // Ports 53500-65499, above the library programs' 50000-53499 below: every answer a new lease.
      socketRates.push(await perSecond(unix.socketPath, 53500 + r * 4 * per))
    }
    const [bareRate, socketRate] = [median(bareRates), median(socketRates)]
    row('bare node:http req/s, 4 C clients (new connection each)', f(bareRate, 0), '', '1.00')
    row('styxy decisions/s via the daemon\'s socket, same clients (new leases)', f(socketRate, 0), '', `${f(socketRate / bareRate, 2)} of bare; rounds ${socketRates.map((x) => f(x, 0)).join(', ')} vs bare ${bareRates.map((x) => f(x, 0)).join(', ')}`)
    console.log(`(${stealSince(stealAtRates)})`)

    // The real clients: 4 programs binding at once under the library (cheap C clients, unlike the Node one above),
    // each bind a first ask (a new lease). The daemon's JIT is warmed on this request shape first, and the
    // warm-up programs' leases are left to go (the reaper releases them once they exit) before measuring.
    const binds = quick ? 200 : 500
    const programs = (first: number) => Promise.all([0, 1, 2, 3].map((i) => new Promise<number>((resolve, reject) => {
      const p = spawn(BINDBENCH, [String(binds), String(first + i * 1000)], {env: {...d.env, LD_PRELOAD: LIB}, stdio: 'ignore'})
      p.on('exit', (code) => (code === 0 ? resolve(p.pid!) : reject(new Error(`bindbench exited ${code}`))))
    })))
    const warmPids = await programs(50000)
    for (let t0 = Date.now(); (await d.client.leases()).some((l) => warmPids.includes(l.pid!)) && Date.now() - t0 < 10_000;) await new Promise((r) => setTimeout(r, 100))
    const started = process.hrtime.bigint()
    await programs(34000)
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    row('styxy decisions/s, 4 programs binding under the library (new leases)', f((4 * binds) / seconds, 0), '', 'the programs\' own side of each bind shares the two cores (the 3000/s target is the C clients\' row)')

    console.log('\n## 10,000 active leases\n')
    // Two warm daemons asked in turns: this one, back to few leases, and one of its own filled with 10,000. A slow
    // stretch of this shared machine then falls on both, and their ratio is the leases' cost alone.
    await killAll([scratch])
    await d.client.cleanup()
    const dk = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '3600000', STYXY_REAP_INTERVAL_MS: '1000'}})
    ours.add(dk.child)
    const unixK = {socketPath: path.join(dk.home, 'daemon.sock')}
    const before = rssMb(dk.pid)
    let filled = 0
    let p = 40000
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (filled < 10000) {
        filled++
        await post(unixK, reqOf(holder.pid!, p++))
      }
    }))
    const few = (await d.client.leases()).length
    const empty: number[] = []
    const full: number[] = []
    for (let i = 0; i < N; i++) {
      empty.push(await post(unix, reqOf(holder.pid!, 14000 + (i % 1000))))
      full.push(await post(unixK, reqOf(holder.pid!, 16000 + (i % 1000))))
    }
    const leases = (await dk.client.leases()).length
    const after = rssMb(dk.pid)
    await dk.stop()
    removeHome(dk.home)
    row(`decision p50 µs, ${few} leases (before these requests)`, f(pct(empty, 50)), f(pct(empty, 99)), '1.00')
    row(`decision p50 µs, ${leases} leases`, f(pct(full, 50)), f(pct(full, 99)), f(pct(full, 50) / pct(empty, 50), 2) + ' (target <= 1.2)')
    row('daemon RSS MB (a new daemon, before its fill -> with 10k leases)', `${f(before)} -> ${f(after)}`, '', 'target < 100')

    console.log('\n## The interceptor, as a program sees bind()\n')
    // A daemon of its own, without the 10,000 leases above, and the three ways of binding taken in turns:
    // one long series each would let a slow stretch of this shared machine land on one backend only.
    // Production timings: the test helper's reaper runs every 200 ms, five times as often as a real daemon's.
    const di = await startDaemon({env: {STYXY_REAP_INTERVAL_MS: '1000'}})
    ours.add(di.child)
    const n = quick ? 200 : 1000
    const rounds = 4
    const downHome = tempHome('styxy-bench-down-')
    const downEnv = isolatedEnv(downHome, await freePort())
    // Down another way: killed with -9, which leaves its socket file and token behind.
    const dk9 = await startDaemon({env: {STYXY_REAP_INTERVAL_MS: '1000'}})
    await dk9.kill9()
    let stealAtBinds = cpuTimes()
    const series3 = {bare: [] as Bench[], warm: [] as Bench[], supervised: [] as Bench[], down: [] as Bench[], supervisedDown: [] as Bench[], bareTrip: [] as Bench[], killed: [] as Bench[]}
    // A server binds once, after the machine has been idle: caches cold, CPUs asleep. The same binds one every
    // 10 ms, in the same rounds, against the same round trip to bare node:http with the same pauses.
    const gapUs = 10_000
    const nIdle = quick ? 40 : 200
    const idle = {bare: [] as Bench[], warm: [] as Bench[], bareTrip: [] as Bench[]}
    try {
      // A new daemon's JIT is cold for the first few thousand requests; the daemon under test is a warm one.
      bindbench(quick ? 500 : 3000, 40000, {...di.env, LD_PRELOAD: LIB})
      stealAtBinds = cpuTimes()
      for (let k = 0; k < rounds; k++) {
        const at = 17000 + k * 7 * (n / rounds)
        const step = n / rounds
        series3.bare.push(bindbench(step, at, di.env))
        series3.warm.push(bindbench(step, at + step, {...di.env, LD_PRELOAD: LIB}))
        // The seccomp backend: the same program, its binds trapped by the filter and answered by the supervisor.
        series3.supervised.push(bindbench(step, at + 2 * step, di.env, [SUPERVISOR, '--']))
        series3.down.push(bindbench(step, at + 3 * step, {...downEnv, LD_PRELOAD: LIB}))
        series3.supervisedDown.push(bindbench(step, at + 4 * step, downEnv, [SUPERVISOR, '--']))
        // What a lone round trip to a Node server costs on this machine right now: the floor under the above.
        series3.bareTrip.push(askLone(step, baseUnix.socketPath, holder.pid!))
        series3.killed.push(bindbench(step, at + 6 * step, {...dk9.env, LD_PRELOAD: LIB}))
        const idleAt = 30000 + k * 2 * (nIdle / rounds)
        idle.bare.push(bindbench(nIdle / rounds, idleAt, di.env, [], gapUs))
        idle.warm.push(bindbench(nIdle / rounds, idleAt + nIdle / rounds, {...di.env, LD_PRELOAD: LIB}, [], gapUs))
        idle.bareTrip.push(askLone(nIdle / rounds, baseUnix.socketPath, holder.pid!, gapUs))
      }
    } finally {
      await di.stop()
      removeHome(di.home)
      removeHome(downHome)
      removeHome(dk9.home)
    }
    const [bare, warm, supervised, down, supervisedDown, bareTrip, killed] = Object.values(series3).map(combine)
    row('bind() without the library', f(bare.p50), f(bare.p99), '')
    row('bind() with the library, daemon warm', f(warm.p50), f(warm.p99), `added p50 ${f(warm.p50 - bare.p50)} µs (target <= 500), p99 ${f(warm.p99 - bare.p99)} µs (target <= 5000)`)
    row('a lone request to bare node:http, same rounds (C client, Unix socket, new connection)', f(bareTrip.p50), f(bareTrip.p99), `the library's added p50 is ${f((warm.p50 - bare.p50) / bareTrip.p50, 2)}x this`)
    row('bind() with the library, daemon down', f(down.p50), f(down.p99), `added p50 ${f(down.p50 - bare.p50)} µs (target <= 100)`)
    row('bind() with the library, daemon killed (-9): its socket file and token left', f(killed.p50), f(killed.p99), `added p50 ${f(killed.p50 - bare.p50)} µs`)
    row('bind() under the seccomp supervisor, daemon warm', f(supervised.p50), f(supervised.p99), `added p50 ${f(supervised.p50 - bare.p50)} µs (target <= 1000), ${f((supervised.p50 - bare.p50) / Math.max(1, warm.p50 - bare.p50), 2)}x the library's`)
    row('bind() under the seccomp supervisor, daemon down', f(supervisedDown.p50), f(supervisedDown.p99), `added p50 ${f(supervisedDown.p50 - bare.p50)} µs`)
    const [idleBare, idleWarm, idleTrip] = Object.values(idle).map(combine)
    row(`bind() without the library, one every ${gapUs / 1000} ms`, f(idleBare.p50), f(idleBare.p99), '')
    row(`bind() with the library, daemon warm, one every ${gapUs / 1000} ms`, f(idleWarm.p50), f(idleWarm.p99), `added p50 ${f(idleWarm.p50 - idleBare.p50)} µs`)
    row(`a lone request to bare node:http, one every ${gapUs / 1000} ms`, f(idleTrip.p50), f(idleTrip.p99), `the library's added p50 is ${f((idleWarm.p50 - idleBare.p50) / idleTrip.p50, 2)}x this`)
    console.log(`(${stealSince(stealAtBinds)})`)
    const failed = [bare, warm, bareTrip, down, killed, supervised, supervisedDown, idleBare, idleWarm, idleTrip].map((x) => x.failed)
    if (failed.some((x) => x > 0)) console.log(`(failed binds, in row order: ${failed.join('/')})`)

    // `styxy` as it is run: the command itself (bin/run.cjs, through its shebang, as `npm link` installs it), which
    // starts Node without NODE_EXTRA_CA_CERTS and hands the variable back to the command (see bin/run.cjs).
    // `node bin/run.cjs` is shown too: Node then reads that bundle before any of our code runs.
    const runs = quick ? 5 : 15
    const t = timeCommand('true', [], d.env, runs)
    const r = timeCommand(CLI, ['run', '--', 'true'], d.env, runs)
    const rn = timeCommand(process.execPath, [CLI, 'run', '--', 'true'], d.env, runs)
    const n0 = timeCommand(process.execPath, ['-e', '0'], d.env, runs)
    row('`true` median ms', f(median(t)), '', '')
    row('`node -e 0` median ms', f(median(n0)), '', d.env.NODE_EXTRA_CA_CERTS ? 'with NODE_EXTRA_CA_CERTS, as this machine sets it' : '')
    row('`styxy run -- true` median ms', f(median(r)), '', `overhead ${f(median(r) - median(t))} ms (target <= 150)`)
    row('`node bin/run.cjs run -- true` median ms', f(median(rn)), '', `overhead ${f(median(rn) - median(t))} ms`)
    if (d.env.NODE_EXTRA_CA_CERTS) {
      // Node 20 reads and parses NODE_EXTRA_CA_CERTS (with its own root store) while it starts, before any of our
      // code runs: ~70-85 ms on this VM, most of `node -e 0`. Without it, our own part shows.
      const {NODE_EXTRA_CA_CERTS: _, ...plain} = d.env
      const n0p = timeCommand(process.execPath, ['-e', '0'], plain, runs)
      const rp = timeCommand(CLI, ['run', '--', 'true'], plain, runs)
      row('`node -e 0` median ms, without NODE_EXTRA_CA_CERTS', f(median(n0p)), '', `Node's start-up with it: +${f(median(n0) - median(n0p))} ms`)
      row('`styxy run -- true` median ms, without NODE_EXTRA_CA_CERTS', f(median(rp)), '', `overhead ${f(median(rp) - median(t))} ms; over node -e 0 ${f(median(rp) - median(n0p))} ms`)
    }

    console.log('\n## CLI start-up\n')
    const status = timeCommand(CLI, ['status', '--json'], d.env, runs)
    const check = timeCommand(CLI, ['check', '1'], {...d.env}, runs)
    row('`styxy status --json` median ms', f(median(status)), '', `${f(median(status) / median(n0), 2)}x node -e 0 (target <= 3)`)
    row('`styxy check 1` median ms', f(median(check)), '', `${f(median(check) / median(n0), 2)}x node -e 0 (target <= 3)`)
  } finally {
    baseline.kill('SIGTERM')
    await killAll([holder, scratch])
    await d.stop()
    removeHome(d.home)
    removeHome(baseHome)
  }
}

await main()
