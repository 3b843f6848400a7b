// The lone bind after quiet on a busy host: >= 20,000 TIME_WAIT sockets in this network namespace's TCP table
// (what a load test or a CI runner leaves for a minute), through a daemon asking the kernel with sock_diag and,
// for comparison, one reading /proc/net/tcp whole (STYXY_KERNEL=proc, the old way), in the same cycles.
import {keepTimeWait, timeWaitCount} from '../test/helpers/busy-table.js'
import {LIB} from '../test/helpers/programs.js'
import {benchDaemon, cpuTimes, f, machineSince, ms, note, pct, quick, section, stopDaemon, target} from './lib.js'
import {LONE_N, QUIET_MS, bindArm, loneBinds, loneRows, schedNote, warmUp, type Arm} from './lone-bind.js'

const FLOOR = 20_000
const FILL = 25_000

/** Fill the table to FILL TIME_WAIT sockets when fewer than FLOOR + a margin are left (bounded, at most 60 s a fill). */
const topUp = (): Promise<number> => keepTimeWait(FLOOR, (FILL - FLOOR) / 2)

export async function loneBindBusyHost(): Promise<void> {
  const d = await benchDaemon()
  const dp = await benchDaemon({STYXY_KERNEL: 'proc'})
  try {
    warmUp(d, 26000)
    warmUp(dp, 26500)
    const arms: Arm[] = [
      bindArm('bind() without the library, a new program after 1.5 s of quiet', d.env),
      bindArm('bind() with the library, daemon asking the kernel by sock_diag', {...d.env, LD_PRELOAD: LIB}, d),
      bindArm('bind() with the library, daemon reading /proc/net/tcp (STYXY_KERNEL=proc)', {...dp.env, LD_PRELOAD: LIB}, dp),
    ]
    const n = quick ? 3 : LONE_N
    section(`A lone bind after ${QUIET_MS / 1000} s of quiet, >= ${FLOOR.toLocaleString('en')} TIME_WAIT sockets in the table (${n} samples per row, in turns; p99 is the slowest)`, 'what | p50 | p99 | over the plain bind')
    const t0 = Date.now()
    const first = await topUp()
    const fillMs = Date.now() - t0
    const counts: number[] = []
    let refills = 0
    const from = cpuTimes()
    const before = [(await d.client.status()).kernel, (await dp.client.status()).kernel]
    // TIME_WAIT lasts 60 s; the cycles take longer, so the table is counted before each pause and topped up
    // when it has fallen below the floor (the pause that follows lets the burst settle).
    const got = await loneBinds(arms, n, 27100, async () => {
      let now = timeWaitCount()
      if (now < FLOOR) {
        refills++
        now = await topUp()
      }
      counts.push(now)
    })
    const after = [(await d.client.status()).kernel, (await dp.client.status()).kernel]
    const [, diag, proc] = loneRows(arms, got)
    const perQuery = (i: number) => f((after[i].examined - before[i].examined) / Math.max(1, after[i].queries - before[i].queries), 0)
    note(`TIME_WAIT sockets before each bind: ${Math.min(...counts)}-${Math.max(...counts)} (first fill to ${first} took ${f(fillMs / 1000)} s; ${refills} top-up(s)); sockets the kernel described per query: sock_diag ${perQuery(0)}, /proc ${perQuery(1)}`)
    note(schedNote(arms[1], got[1]))
    note(schedNote(arms[2], got[2]))
    note(`what sock_diag buys here: added p50 ${ms(diag.p50)} vs ${ms(proc.p50)} by /proc (${f(proc.p50 / Math.max(1, diag.p50), 1)}x), p99 ${ms(diag.p99)} vs ${ms(proc.p99)}`)
    note(machineSince(from))
    target('lone bind after quiet, >= 20,000 TIME_WAIT, added p50', '<= 1 ms', `${ms(diag.p50)} (plain bind p50 ${ms(pct(got[0].us, 50))}; /proc daemon ${ms(proc.p50)})`, diag.p50 <= 1000)
    target('lone bind after quiet, >= 20,000 TIME_WAIT, added p99', '<= 5 ms', `${ms(diag.p99)} (/proc daemon ${ms(proc.p99)})`, diag.p99 <= 5000)
  } finally {
    await stopDaemon(d)
    await stopDaemon(dp)
  }
}
