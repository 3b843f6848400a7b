// An idle daemon's cost: its CPU time (utime + stime, /proc/<pid>/stat) across a window in which nobody asks it
// anything, with 5 and with 500 leases of live holders (about half of them listening on their port, as servers
// do, so the reaper's rounds find listeners), at production timings. In the same window: an idle bare node:http
// server (the baseline), and a daemon reading /proc instead (STYXY_KERNEL=proc: no exit events, the reaper
// polls every second) with the same 500 holders. Then where their memory goes (bench/memory.ts).
import type net from 'node:net'
import {DAEMON_NODE_FLAGS} from '../src/client/ensure-daemon.js'
import type {TestDaemon} from '../test/helpers/daemon.js'
import {spawnHolder, killAll, listenOn, closeServer} from '../test/helpers/processes.js'
import {timeWaitCount} from '../test/helpers/busy-table.js'
import {CLK_TCK, benchDaemon, cpuMs, cpuTimes, f, machineSince, memory, note, quick, row, section, sleep, startBaseline, stopDaemon, target, track, wakeups} from './lib.js'
import {idleNode, memoryRows, stopIdleNode} from './memory.js'

const WINDOW_MS = quick ? 5_000 : 30_000
// After the leases are made: more than one reaper round (5 s), so the window holds steady state only.
const SETTLE_MS = quick ? 2_000 : 6_000
const SERVICES = ['dev', 'api', 'auth', 'functions', 'ui']

/**
 * `count` leases, one per holder: the even ones are binds of a port in `first..` that this process then listens
 * on (a server's bind() and listen()), the odd ones allocations (a port handed out, not yet listened on).
 */
async function lease(d: TestDaemon, holders: number[], count: number, first: number, servers: net.Server[]): Promise<number> {
  let listening = 0
  let next = 0
  // Four requests at a time: setting up 1,000 leases one by one took ~10 s of this section.
  await Promise.all([0, 1, 2, 3].map(async () => {
    for (let i = next++; i < count; i = next++) {
      const pid = holders[i]
      if (i % 2 === 0) {
        const answer = await d.client.bind({pid, port: first + i, command: 'bench-idle'})
        servers.push(await listenOn('127.0.0.1', answer.port))
        listening++
      } else {
        await d.client.allocate({service: SERVICES[i % SERVICES.length], pid})
      }
    }
  }))
  return listening
}

export async function idle(): Promise<void> {
  const n = 500
  const holders = Array.from({length: n + 5}, () => track(spawnHolder()))
  await Promise.all(holders.map((h) => new Promise((resolve) => (h.pid ? resolve(null) : h.once('spawn', resolve)))))
  const pids = holders.map((h) => h.pid!)
  const servers: net.Server[] = []
  const base = await startBaseline(DAEMON_NODE_FLAGS)
  const bare = await idleNode('bare')
  const modules = await idleNode('modules')
  const d5 = await benchDaemon()
  const d500 = await benchDaemon()
  const dp = await benchDaemon({STYXY_KERNEL: 'proc'})
  const atStart = new Map([d5, d500, dp].map((d) => [d.pid, memory(d.pid).rss]))
  try {
    const l5 = await lease(d5, pids.slice(n), 5, 21000, servers)
    const l500 = await lease(d500, pids.slice(0, n), n, 21100, servers)
    const lp = await lease(dp, pids.slice(0, n), n, 21700, servers)
    const statuses = await Promise.all([d5, d500, dp].map((d) => d.client.status()))
    await sleep(SETTLE_MS)
    const procs = [
      {what: 'bare node:http server (bench/baseline-server.ts), idle', pid: base.pid},
      {what: `styxy daemon, 5 leases (${l5} listening)`, pid: d5.pid},
      {what: `styxy daemon, ${n} leases (${l500} listening)`, pid: d500.pid},
      {what: `styxy daemon, ${n} leases (${lp} listening), STYXY_KERNEL=proc (reaper polls each 1 s)`, pid: dp.pid},
    ]
    section(`Idle: nothing asked for ${WINDOW_MS / 1000} s, all measured in the same window (production timings)`, 'what | CPU ms in the window | % of one CPU | wake-ups/s, target')
    const from = cpuTimes()
    const tw = timeWaitCount()
    const cpu0 = procs.map((p) => cpuMs(p.pid))
    const wake0 = procs.map((p) => wakeups(p.pid))
    const t0 = process.hrtime.bigint()
    await sleep(WINDOW_MS)
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e6
    const cpu = procs.map((p, i) => cpuMs(p.pid) - cpu0[i])
    const wake = procs.map((p, i) => (wakeups(p.pid) - wake0[i]) / (elapsed / 1000))
    const share = cpu.map((c) => (100 * c) / elapsed)
    procs.forEach((p, i) => row(p.what, f(cpu[i], 0), `${f(share[i], 2)}%`, `${f(wake[i], 1)}/s${i === 1 || i === 2 ? ` (target <= 0.5%; the bare server: ${f(share[0], 2)}%)` : ''}`))
    // Reaper rounds: every 5 s with pidfd exit events, every second when polling (server.ts's defaults).
    const rounds = [WINDOW_MS / 5000, WINDOW_MS / 5000, WINDOW_MS / 1000]
    note(`CPU per reaper round: ${[1, 2, 3].map((i) => `${f(cpu[i] / rounds[i - 1], 1)} ms`).join(', ')} (5, ${n}, ${n} with /proc: ${rounds.join(', ')} rounds in the window)`)
    note(`CPU time is counted in ${1000 / CLK_TCK}-ms clock ticks; kernel: ${statuses.map((s) => `${s.kernel.sockets}/${s.kernel.exits} watching ${s.kernel.watching}`).join(', ')}; ${tw} TIME_WAIT sockets in the table`)
    const leasesAfter = await Promise.all([d5, d500, dp].map(async (d) => (await d.client.leases()).length))
    note(`leases after the window: ${leasesAfter.join(', ')} (none released: the holders live); ${machineSince(from)}`)
    target('idle daemon CPU, 5 leases', '<= 0.5% of one CPU', `${f(share[1], 2)}% (bare node:http ${f(share[0], 2)}%)`, share[1] <= 0.5)
    target(`idle daemon CPU, ${n} leases`, '<= 0.5% of one CPU', `${f(share[2], 2)}% (bare node:http ${f(share[0], 2)}%; /proc daemon ${f(share[3], 2)}%)`, share[2] <= 0.5)

    section('Idle memory: where an idle daemon\'s RSS goes (same Node flags, same moment)', 'what | VmRSS MB (daemons: after start -> after the idle window) | anon / file MB | increment')
    memoryRows([
      {what: 'bare Node (`node -e` with an interval)', pid: bare.pid},
      {what: 'Node with the daemon\'s modules loaded, nothing started', pid: modules.pid},
      {what: 'styxy daemon, 5 leases', pid: d5.pid, atStart: atStart.get(d5.pid)},
      {what: `styxy daemon, ${n} leases`, pid: d500.pid, atStart: atStart.get(d500.pid)},
    ])
    row('bare node:http server, idle (for comparison)', f(memory(base.pid).rss), '', '')
  } finally {
    await Promise.all(servers.map(closeServer))
    for (const d of [d5, d500, dp]) await stopDaemon(d)
    await Promise.all([stopIdleNode(bare), stopIdleNode(modules), base.stop()])
    await killAll(holders)
  }
}
