// A lone bind after quiet: how a server meets Styxy. A new program (bindbench) does one bind() after 1.5 s in
// which this bench asked nothing of anyone, so the daemon's caches are cold and its CPU may be asleep; the
// baseline is the same program binding without the library, with the same pauses, taken in turns with it.
// Beside them, the floor this machine puts under any lone request: a new C client (askbench) asking a bare
// node:http server once after the same quiet.
import {timeWaitCount} from '../test/helpers/busy-table.js'
import {LIB} from '../test/helpers/programs.js'
import type {TestDaemon} from '../test/helpers/daemon.js'
import {spawnHolder, killAll} from '../test/helpers/processes.js'
import {benchDaemon, bindbench, cpuTimes, f, machineSince, ms, note, oneAsk, oneBind, pct, quick, row, schedstat, section, sleep, startBaseline, stopDaemon, target, track} from './lib.js'

export const QUIET_MS = 1500
export const LONE_N = quick ? 4 : 15

export interface Arm {
  name: string
  /** One sample after the quiet, in µs (NaN: it failed); `port` is new for every sample. */
  once(port: number): Promise<number>
  /** Printed instead of the comparison with the plain bind (a row that is not a bind). */
  aside?: string
  /** The daemon answering: its main thread's scheduling is read around each sample. */
  daemon?: TestDaemon
}

export const bindArm = (name: string, env: NodeJS.ProcessEnv, daemon?: TestDaemon): Arm => ({name, once: (port) => oneBind(port, env), daemon})

export interface Lone {
  us: number[]
  failed: number
  /** Per sample, the daemon's main thread from the program's start to its exit (release included): µs on a CPU, µs waiting for one. */
  onCpu: number[]
  waiting: number[]
}

/**
 * `n` cycles; in each, every arm takes one sample, each after QUIET_MS of quiet, in an order that rotates from
 * one cycle to the next. `beforeQuiet` runs before each pause (a count of the busy table, a top-up).
 */
export async function loneBinds(arms: Arm[], n: number, firstPort: number, beforeQuiet: () => Promise<void> = async () => {}): Promise<Lone[]> {
  const out: Lone[] = arms.map(() => ({us: [], failed: 0, onCpu: [], waiting: []}))
  let port = firstPort
  for (let c = 0; c < n; c++) {
    for (let j = 0; j < arms.length; j++) {
      const k = (c + j) % arms.length
      await beforeQuiet()
      await sleep(QUIET_MS)
      const pid = arms[k].daemon?.pid
      const s0 = pid ? schedstat(pid) : undefined
      const us = await arms[k].once(port++)
      if (pid && s0) {
        // The exit's release is done by the time the program's pipes close, or nearly: a moment for it.
        await sleep(20)
        const s1 = schedstat(pid)
        out[k].onCpu.push((s1.runNs - s0.runNs) / 1000)
        out[k].waiting.push((s1.waitNs - s0.waitNs) / 1000)
      }
      if (Number.isNaN(us)) out[k].failed++
      else out[k].us.push(us)
    }
  }
  return out
}

/** A daemon warmed up as one that has served a while: a few hundred binds (new leases, released at the program's exit). */
export function warmUp(d: TestDaemon, first: number): void {
  bindbench(quick ? 100 : 400, first, {...d.env, LD_PRELOAD: LIB})
}

/** Rows for arms measured together; arm 0 is the plain bind. Returns each arm's p50/p99 over arm 0's (µs). */
export function loneRows(arms: Arm[], got: Lone[]): {p50: number; p99: number}[] {
  const [p50, p99] = [(i: number) => pct(got[i].us, 50), (i: number) => pct(got[i].us, 99)]
  return arms.map((arm, i) => {
    const added = {p50: p50(i) - p50(0), p99: p99(i) - p99(0)}
    const failed = got[i].failed ? `; ${got[i].failed} failed` : ''
    row(arm.name, ms(p50(i)), ms(p99(i)), i === 0 ? `baseline (${got[i].us.length} samples)${failed}` : arm.aside ? `${arm.aside}${failed}` : `${ms(added.p50)} over the plain bind at the p50, ${ms(added.p99)} at the p99${failed}`)
    return added
  })
}

/** What an arm's daemon did per sample (median): its main thread on a CPU, and runnable but waiting for one. */
export function schedNote(arm: Arm, got: Lone): string {
  return `${arm.name.replace(/^bind\(\) with the library, /, '')}: its main thread spent a median ${f(pct(got.onCpu, 50), 0)} µs on a CPU (max ${f(Math.max(...got.onCpu), 0)}) and ${f(pct(got.waiting, 50), 0)} µs waiting for one (max ${f(Math.max(...got.waiting), 0)}) per bind, from the program's start to 20 ms after its exit (the decision, and the lease's release at the exit)`
}

export async function loneBindQuiet(): Promise<void> {
  const d = await benchDaemon()
  const base = await startBaseline()
  const holder = track(spawnHolder())
  try {
    warmUp(d, 26000)
    const arms: Arm[] = [
      bindArm('bind() without the library, a new program after 1.5 s of quiet', d.env),
      {name: 'a lone request to bare node:http, a new C client after the same quiet (the floor)', once: () => oneAsk(base.unix.socketPath, holder.pid!), aside: 'what any lone request meets here'},
      bindArm('bind() with the library (daemon: sock_diag), the same', {...d.env, LD_PRELOAD: LIB}, d),
    ]
    section(`A lone bind after ${QUIET_MS / 1000} s of quiet, the host's TCP table as it is (${LONE_N} samples per row, in turns; p99 is the slowest)`, 'what | p50 | p99 | over the plain bind')
    const tw = timeWaitCount()
    const from = cpuTimes()
    const before = (await d.client.status()).kernel
    const got = await loneBinds(arms, LONE_N, 27000)
    const after = (await d.client.status()).kernel
    const [, floor, lib] = loneRows(arms, got)
    note(`${schedNote(arms[2], got[2])}; the library's added p50 is ${f(lib.p50 / Math.max(1, floor.p50 + pct(got[0].us, 50)), 2)}x the bare lone request's`)
    note(`${tw} TIME_WAIT sockets in this network namespace's table at the start, ${timeWaitCount()} at the end; the daemon's kernel queries meanwhile: ${after.queries - before.queries}, ${f((after.examined - before.examined) / Math.max(1, after.queries - before.queries))} sockets described per query`)
    note(machineSince(from))
    target('lone bind after 1.5 s quiet, added p50', '<= 1 ms', `${ms(lib.p50)} (bare node:http lone request ${ms(pct(got[1].us, 50))})`, lib.p50 <= 1000)
    target('lone bind after 1.5 s quiet, added p99', '<= 5 ms', ms(lib.p99), lib.p99 <= 5000)
  } finally {
    await stopDaemon(d)
    await base.stop()
    await killAll([holder])
  }
}
