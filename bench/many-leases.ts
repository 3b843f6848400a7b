// A decision with 10,000 active leases against one with few: two warm daemons asked in turns, so a slow
// stretch of this shared machine falls on both and their ratio is the leases' cost alone.
import path from 'node:path'
import {spawnHolder, killAll} from '../test/helpers/processes.js'
import {benchDaemon, f, memory, pct, post, quick, row, section, stopDaemon, target, track} from './lib.js'

export async function manyLeases(): Promise<void> {
  const n = quick ? 300 : 1500
  const fill = 10_000
  const holder = track(spawnHolder())
  // Bind leases that never listen: the long grace keeps the reaper from releasing them mid-run.
  const env = {STYXY_LISTEN_GRACE_MS: '3600000'}
  const few = await benchDaemon(env)
  const many = await benchDaemon(env)
  const reqOf = (port: number) => ({pid: holder.pid!, port, command: 'bench'})
  const fewSock = {socketPath: path.join(few.home, 'daemon.sock')}
  const manySock = {socketPath: path.join(many.home, 'daemon.sock')}
  try {
    section(`${fill.toLocaleString('en')} active leases (two warm daemons asked in turns, ${n} each)`, 'what | p50 µs | p99 µs | ratio, target')
    const before = memory(many.pid).rss
    let filled = 0
    let p = 40000
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (filled < fill) {
        filled++
        await post(manySock, reqOf(p++))
      }
    }))
    // The few-lease daemon gets the same warm-up length of JIT, on ports it then forgets.
    for (let i = 0; i < 2000; i++) await post(fewSock, reqOf(30000 + (i % 100)))
    const fewCount = (await few.client.leases()).length
    const a: number[] = []
    const b: number[] = []
    for (let i = 0; i < n; i++) {
      a.push(await post(fewSock, reqOf(14000 + (i % 1000))))
      b.push(await post(manySock, reqOf(16000 + (i % 1000))))
    }
    const leases = (await many.client.leases()).length
    const after = memory(many.pid).rss
    const ratio = pct(b, 50) / pct(a, 50)
    row(`decision, ${fewCount} leases`, f(pct(a, 50)), f(pct(a, 99)), '1.00')
    row(`decision, ${leases} leases`, f(pct(b, 50)), f(pct(b, 99)), `${f(ratio, 2)} (target <= 1.2)`)
    row('daemon RSS MB, a new daemon before its fill -> with them', `${f(before)} -> ${f(after)}`, '', 'target < 100')
    target('decision p50 with 10,000 leases / with few', '<= 1.2', `${f(ratio, 2)} (${f(pct(b, 50), 0)} vs ${f(pct(a, 50), 0)} µs)`, ratio <= 1.2)
    target('daemon RSS with 10,000 leases', '< 100 MB', `${f(after)} MB`, after < 100)
  } finally {
    await stopDaemon(few)
    await stopDaemon(many)
    await killAll([holder])
  }
}
