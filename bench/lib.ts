// What every section of `make bench` shares: percentiles, rows and targets, the fixtures' drivers, the
// processes it starts (stopped however the bench ends), and what the machine was doing meanwhile.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import {PROJECT_ROOT} from '../src/project.js'
import {startDaemon, tempHome, removeHome, type TestDaemon} from '../test/helpers/daemon.js'
import {BINDPROBE} from '../test/helpers/programs.js'

export const BINDBENCH = path.join(path.dirname(BINDPROBE), 'bindbench')
export const ASKBENCH = path.join(path.dirname(BINDPROBE), 'askbench')
export const quick = process.env.STYXY_BENCH_QUICK === '1'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---- Figures -------------------------------------------------------------------------------------------

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]
}
export const median = (xs: number[]) => pct(xs, 50)
export const f = (x: number, d = 1) => x.toFixed(d)
/** Microseconds as ms with 2 decimals (the lone-bind rows, whose targets are in ms). */
export const ms = (us: number) => `${f(us / 1000, 2)} ms`

export type Bench = {p50: number; p99: number; failed: number}

/** Rounds of one series: the median of the rounds' percentiles (each round is the same size), failures summed. */
export function combine(rounds: Bench[]): Bench {
  return {p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)), failed: rounds.reduce((a, r) => a + r.failed, 0)}
}

// ---- Rows and targets ------------------------------------------------------------------------------------

export function section(title: string, columns = 'what | p50 | p99 | baseline, ratio, target'): void {
  console.log(`\n## ${title}\n\n${columns}`)
}

export function row(...cells: string[]): void {
  console.log(cells.join(' | '))
}

export function note(text: string): void {
  console.log(`(${text})`)
}

export interface Target {
  what: string
  target: string
  measured: string
  met: boolean
}
export const targets: Target[] = []

/** A target for the final summary; `met` is decided by the caller from the same figures its row prints. */
export function target(what: string, targetText: string, measured: string, met: boolean): void {
  targets.push({what, target: targetText, measured, met})
}

// ---- Requests and programs -------------------------------------------------------------------------------

export type Endpoint = {socketPath: string} | {host: string; port: number; token?: string}

/** One `POST /v1/bind` on a new connection (as the interceptor asks); resolves with its round trip in µs. */
export function post(target: Endpoint, body: object): Promise<number> {
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

export async function series(n: number, one: (i: number) => Promise<number>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(await one(i))
  return out
}

function parseBindbench(stdout: string, stderr: string): Bench {
  const m = stdout.match(/p50_us ([\d.]+) p99_us ([\d.]+) failed (\d+)/)
  if (!m) throw new Error(`bindbench: ${stdout} ${stderr}`)
  return {p50: Number(m[1]), p99: Number(m[2]), failed: Number(m[3])}
}

/**
 * bindbench: `n` binds of new ports from `first`, each timed alone. `under`: a command to run it through (the
 * seccomp supervisor and its arguments). `gapUs`: a pause after each bind, so each finds the machine idle.
 */
export function bindbench(n: number, first: number, env: NodeJS.ProcessEnv, under: string[] = [], gapUs = 0): Bench {
  const argv = [...under, BINDBENCH, String(n), String(first), String(gapUs)]
  const r = spawnSync(argv[0], argv.slice(1), {env, encoding: 'utf8'})
  return parseBindbench(r.stdout, r.stderr)
}

/** A new bindbench process doing one bind, without blocking the event loop: its bind() in µs, NaN if it failed. */
export function oneBind(port: number, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(BINDBENCH, ['1', String(port), '0'], {env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    p.stdout!.on('data', (c: Buffer) => (out += c))
    p.stderr!.on('data', (c: Buffer) => (err += c))
    p.on('error', reject)
    p.on('close', () => {
      try {
        const b = parseBindbench(out, err)
        resolve(b.failed ? NaN : b.p50)
      } catch (error) {
        reject(error)
      }
    })
  })
}

/** A new askbench process asking `socket` once (a lone request, waited on as the interceptor does): its round trip in µs. */
export function oneAsk(socket: string, pid: number, port = 1): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(ASKBENCH, [socket, '1', String(port), String(pid), '0', String(INTERCEPTOR_SPIN_US)], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    p.stdout!.on('data', (c: Buffer) => (out += c))
    p.on('error', reject)
    p.on('close', () => {
      const m = /asked \d+ failed (\d+)\np50_us ([\d.]+)/.exec(out)
      if (!m) reject(new Error(`askbench: ${out}`))
      else resolve(m[1] === '0' ? Number(m[2]) : NaN)
    })
  })
}

/** How long the interceptor keeps its CPU while its answer is on the way (interceptor/ipc.zig, spin_ns). */
export const INTERCEPTOR_SPIN_US = 500

/** One C client asking `socket` in turn, waiting for each answer as the interceptor does: a lone request's round trip. */
export function askLone(n: number, socket: string, pid: number, gapUs = 0): Bench {
  const r = spawnSync(ASKBENCH, [socket, String(n), '1', String(pid), String(gapUs), String(INTERCEPTOR_SPIN_US)], {encoding: 'utf8'})
  const m = /asked \d+ failed (\d+)\np50_us ([\d.]+) p99_us ([\d.]+)/.exec(r.stdout)
  if (!m) throw new Error(`askbench: ${r.stdout} ${r.stderr}`)
  return {p50: Number(m[2]), p99: Number(m[3]), failed: Number(m[1])}
}

export function timeCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, runs: number, mayFail = false): number[] {
  const out: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint()
    const r = spawnSync(cmd, args, {env, stdio: 'ignore'})
    if (r.status !== 0 && !mayFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`)
    out.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return out
}

// ---- Processes this bench starts -------------------------------------------------------------------------

// What this bench started is stopped however it ends: Ctrl-C, or `| head` closing stdout, used to leave its
// daemon running with nobody to stop it.
const ours = new Set<ChildProcess>()
const homes = new Set<string>()
export function track<T extends ChildProcess>(c: T): T {
  ours.add(c)
  c.once('exit', () => ours.delete(c))
  return c
}
/** A temporary directory removed however the bench ends (removeHome removes it sooner). */
export function benchHome(prefix: string): string {
  const home = tempHome(prefix)
  homes.add(home)
  return home
}
function stopStarted(code: number): never {
  for (const c of ours) c.kill('SIGTERM')
  for (const home of homes) removeHome(home)
  process.exit(code)
}
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => stopStarted(130))
process.stdout.on('error', () => stopStarted(1))

/**
 * A daemon with production timings: the test helper's reaper runs every 200 ms; here the variable is left out,
 * so the daemon picks its own default (5,000 ms with pidfd exit events, 1,000 ms when it polls, as with
 * STYXY_KERNEL=proc). `env` adds to that (STYXY_KERNEL=proc, a longer listen grace).
 */
export async function benchDaemon(env: Record<string, string> = {}): Promise<TestDaemon> {
  const d = await startDaemon({env: {STYXY_REAP_INTERVAL_MS: undefined, ...env}})
  track(d.child)
  homes.add(d.home)
  return d
}

export async function stopDaemon(d: TestDaemon): Promise<void> {
  await d.stop()
  removeHome(d.home)
  homes.delete(d.home)
}

export interface Baseline {
  child: ChildProcess
  pid: number
  unix: {socketPath: string}
  tcp: {host: string; port: number}
  stop(): Promise<void>
}

/** bench/baseline-server.ts: a bare node:http server doing the least the bind route must do, on a Unix socket and TCP. */
export async function startBaseline(nodeFlags: string[] = []): Promise<Baseline> {
  const home = benchHome('styxy-bench-')
  const socketPath = path.join(home, 'b.sock')
  const child = track(spawn(process.execPath, [...nodeFlags, path.join(PROJECT_ROOT, 'dist', 'bench', 'baseline-server.js'), socketPath], {stdio: ['ignore', 'pipe', 'inherit']}))
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => resolve(Number(/ready (\d+)/.exec(c.toString())![1])))
    child.once('exit', (code) => reject(new Error(`baseline server exited ${code}`)))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    child, pid: child.pid!, unix: {socketPath}, tcp: {host: '127.0.0.1', port},
    async stop() {
      child.kill('SIGTERM')
      await exited
      removeHome(home)
      homes.delete(home)
    },
  }
}

// ---- What a process costs, from /proc ------------------------------------------------------------------

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).stdout.trim()) || 100

/** A process's CPU time so far (utime + stime of all its threads, /proc/<pid>/stat), in ms. */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK
}

/** Context switches of all a process's threads (a proxy for how often it wakes up). */
export function wakeups(pid: number): number {
  let n = 0
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
      n += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(s)?.[1] ?? 0)
    } catch {
      // the thread ended
    }
  }
  return n
}

/** A process's main thread as the scheduler saw it (/proc/<pid>/task/<pid>/schedstat): ns on a CPU, ns runnable but waiting for one. */
export function schedstat(pid: number): {runNs: number; waitNs: number} {
  const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number)
  return {runNs: run, waitNs: wait}
}

/** VmRSS, and its anonymous and file-backed parts (/proc/<pid>/status), in MB. */
export function memory(pid: number): {rss: number; anon: number; file: number} {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024
  return {rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem')}
}

// ---- What the machine was doing ----------------------------------------------------------------------------

/** /proc/stat's first line: all CPU time, the share idle, and the share the hypervisor gave to other guests. */
export function cpuTimes(): {steal: number; idle: number; total: number} {
  const x = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  return {steal: x[7] ?? 0, idle: (x[3] ?? 0) + (x[4] ?? 0), total: x.reduce((a, b) => a + b, 0)}
}

/** Steal and busy shares since `from`, and the load average now. */
export function machineSince(from: {steal: number; idle: number; total: number}): string {
  const now = cpuTimes()
  const total = Math.max(1, now.total - from.total)
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  return `meanwhile: both CPUs ${f((100 * (total - (now.idle - from.idle))) / total, 0)}% busy (everyone's, this bench's included), ${f((100 * (now.steal - from.steal)) / total, 1)}% stolen by the hypervisor; loadavg now ${load}`
}
