// bind() as a program sees it (zig-out/bin/bindbench), binds back to back: without the library, with it (daemon
// warm, down, killed -9), under the seccomp supervisor, and a lone round trip to bare node:http, all in the
// same rounds, so a slow stretch of this shared machine falls on every row.
import {isolatedEnv, removeHome} from '../test/helpers/daemon.js'
import {spawnHolder, killAll, freePort} from '../test/helpers/processes.js'
import {LIB, SUPERVISOR} from '../test/helpers/programs.js'
import {askLone, benchDaemon, benchHome, bindbench, combine, cpuTimes, f, machineSince, note, quick, row, schedstat, section, startBaseline, stopDaemon, target, track, type Bench} from './lib.js'

export async function interceptor(): Promise<void> {
  const n = quick ? 200 : 1000
  const rounds = 4
  const step = n / rounds
  const holder = track(spawnHolder())
  const base = await startBaseline()
  const di = await benchDaemon()
  const downHome = benchHome('styxy-bench-down-')
  const downEnv = isolatedEnv(downHome, await freePort())
  // Down another way: killed with -9, which leaves its socket file and token behind.
  const dk9 = await benchDaemon()
  await dk9.kill9()
  const s = {bare: [] as Bench[], warm: [] as Bench[], supervised: [] as Bench[], down: [] as Bench[], supervisedDown: [] as Bench[], trip: [] as Bench[], killed: [] as Bench[]}
  // The same binds one every 10 ms, in the same rounds, against the same round trip to bare node:http with the same pauses.
  const gapUs = 10_000
  const nIdle = quick ? 40 : 200
  const idle = {bare: [] as Bench[], warm: [] as Bench[], trip: [] as Bench[]}
  let from = cpuTimes()
  // The daemon's main thread on a CPU during the warm rows (its decisions; the release at each program's exit
  // may land in the next row): the figure to set against a lone bind's (bench/lone-bind.ts).
  let daemonUs = 0
  try {
    section(`The interceptor: bind() as a program sees it, back to back (${n} binds per row, ${rounds} rounds)`, 'what | p50 µs | p99 µs | added, ratio, target')
    // A new daemon's JIT is cold for the first few thousand requests; the daemon under test is a warm one.
    bindbench(quick ? 500 : 3000, 40000, {...di.env, LD_PRELOAD: LIB})
    from = cpuTimes()
    for (let k = 0; k < rounds; k++) {
      const at = 17000 + k * 7 * step
      s.bare.push(bindbench(step, at, di.env))
      const s0 = schedstat(di.pid)
      s.warm.push(bindbench(step, at + step, {...di.env, LD_PRELOAD: LIB}))
      const s1 = schedstat(di.pid)
      daemonUs += (s1.runNs - s0.runNs) / 1000
      // The seccomp backend: the same program, its binds trapped by the filter and answered by the supervisor.
      s.supervised.push(bindbench(step, at + 2 * step, di.env, [SUPERVISOR, '--']))
      s.down.push(bindbench(step, at + 3 * step, {...downEnv, LD_PRELOAD: LIB}))
      s.supervisedDown.push(bindbench(step, at + 4 * step, downEnv, [SUPERVISOR, '--']))
      // What a lone round trip to a Node server costs on this machine right now: the floor under the above.
      s.trip.push(askLone(step, base.unix.socketPath, holder.pid!))
      s.killed.push(bindbench(step, at + 6 * step, {...dk9.env, LD_PRELOAD: LIB}))
      const idleAt = 30000 + k * 2 * (nIdle / rounds)
      idle.bare.push(bindbench(nIdle / rounds, idleAt, di.env, [], gapUs))
      idle.warm.push(bindbench(nIdle / rounds, idleAt + nIdle / rounds, {...di.env, LD_PRELOAD: LIB}, [], gapUs))
      idle.trip.push(askLone(nIdle / rounds, base.unix.socketPath, holder.pid!, gapUs))
    }
  } finally {
    await stopDaemon(di)
    removeHome(downHome)
    removeHome(dk9.home)
    await base.stop()
    await killAll([holder])
  }
  const [bare, warm, supervised, down, supervisedDown, trip, killed] = Object.values(s).map(combine)
  const added = {p50: warm.p50 - bare.p50, p99: warm.p99 - bare.p99}
  row('bind() without the library', f(bare.p50), f(bare.p99), '')
  row('bind() with the library, daemon warm', f(warm.p50), f(warm.p99), `added p50 ${f(added.p50)} µs (target <= 1000), p99 ${f(added.p99)} µs (target <= 5000)`)
  note(`the daemon's main thread was on a CPU ${f(daemonUs / n, 0)} µs per decision during these rows`)
  row('a lone request to bare node:http, same rounds (C client, Unix socket, new connection)', f(trip.p50), f(trip.p99), `the library's added p50 is ${f(added.p50 / trip.p50, 2)}x this`)
  row('bind() with the library, daemon down', f(down.p50), f(down.p99), `added p50 ${f(down.p50 - bare.p50)} µs (target <= 100)`)
  row('bind() with the library, daemon killed (-9): its socket file and token left', f(killed.p50), f(killed.p99), `added p50 ${f(killed.p50 - bare.p50)} µs`)
  row('bind() under the seccomp supervisor, daemon warm', f(supervised.p50), f(supervised.p99), `added p50 ${f(supervised.p50 - bare.p50)} µs (target <= 1000), ${f((supervised.p50 - bare.p50) / Math.max(1, added.p50), 2)}x the library's`)
  row('bind() under the seccomp supervisor, daemon down', f(supervisedDown.p50), f(supervisedDown.p99), `added p50 ${f(supervisedDown.p50 - bare.p50)} µs`)
  const [idleBare, idleWarm, idleTrip] = Object.values(idle).map(combine)
  row(`bind() without the library, one every ${gapUs / 1000} ms`, f(idleBare.p50), f(idleBare.p99), '')
  row(`bind() with the library, daemon warm, one every ${gapUs / 1000} ms`, f(idleWarm.p50), f(idleWarm.p99), `added p50 ${f(idleWarm.p50 - idleBare.p50)} µs`)
  row(`a lone request to bare node:http, one every ${gapUs / 1000} ms`, f(idleTrip.p50), f(idleTrip.p99), `the library's added p50 is ${f((idleWarm.p50 - idleBare.p50) / idleTrip.p50, 2)}x this`)
  note(machineSince(from))
  const failed = [bare, warm, trip, down, killed, supervised, supervisedDown, idleBare, idleWarm, idleTrip].map((x) => x.failed)
  if (failed.some((x) => x > 0)) note(`failed binds, in row order: ${failed.join('/')}`)
  const tripNote = `bare node:http lone request p50 ${f(trip.p50, 0)} µs, same rounds`
  target('bind() added by the library, back to back, p50', '<= 1 ms', `${f(added.p50, 0)} µs (${tripNote})`, added.p50 <= 1000)
  target('bind() added by the library, back to back, p99', '<= 5 ms', `${f(added.p99, 0)} µs`, added.p99 <= 5000)
  target('bind() added by the library, daemon down, p50', '<= 0.1 ms', `${f(down.p50 - bare.p50, 0)} µs`, down.p50 - bare.p50 <= 100)
  target('bind() added by the seccomp supervisor, daemon warm, p50', '<= 1 ms', `${f(supervised.p50 - bare.p50, 0)} µs`, supervised.p50 - bare.p50 <= 1000)
}
