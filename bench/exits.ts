// From a holder's death to its lease's release: holders each with a lease, killed with -9 one at a time, timed
// from kill() to the `lease.released` event (reason holder-exited) on the event stream (GET /v1/events). The
// daemon hears of an exit from a pidfd; the baseline is a daemon reading /proc (STYXY_KERNEL=proc), whose reaper
// finds the dead on its rounds (every second by default), in the same run.
import type WebSocket from 'ws'
import type {StyxyEvent} from '../src/protocol/events.js'
import type {TestDaemon} from '../test/helpers/daemon.js'
import {spawnHolder, killAll} from '../test/helpers/processes.js'
import {benchDaemon, cpuTimes, f, machineSince, note, pct, quick, row, section, sleep, stopDaemon, target, track} from './lib.js'

const opened = (ws: WebSocket) => new Promise<void>((resolve, reject) => {
  ws.once('open', () => resolve())
  ws.once('error', reject)
})

/** ms from kill() to each lease's release event; NaN where none came within 5 s. */
async function killTimes(d: TestDaemon, n: number): Promise<number[]> {
  const holders = Array.from({length: n}, () => track(spawnHolder()))
  const leases = []
  for (const h of holders) leases.push(await d.client.allocate({service: 'dev', pid: h.pid!}))
  const ws = d.client.events()
  await opened(ws)
  const released = new Map<string, bigint>()
  const waiting = new Map<string, () => void>()
  ws.on('message', (data: Buffer) => {
    const at = process.hrtime.bigint()
    const e = JSON.parse(data.toString()) as StyxyEvent
    if (e.type !== 'lease.released' || e.data.reason !== 'holder-exited') return
    released.set(e.data.id, at)
    waiting.get(e.data.id)?.()
  })
  const out: number[] = []
  try {
    for (let i = 0; i < n; i++) {
      // A pause between kills, so that each exit is alone (and a polling reaper's round falls anywhere in it).
      await sleep(100 + ((i * 37) % 100))
      const id = leases[i].id
      const got = new Promise<void>((resolve) => waiting.set(id, resolve))
      const t0 = process.hrtime.bigint()
      holders[i].kill('SIGKILL')
      await Promise.race([got, sleep(5000)])
      const at = released.get(id)
      out.push(at === undefined ? NaN : Number(at - t0) / 1e6)
    }
  } finally {
    ws.close()
    await killAll(holders)
  }
  return out
}

export async function exitToRelease(): Promise<void> {
  const n = quick ? 8 : 20
  const d = await benchDaemon()
  const dp = await benchDaemon({STYXY_KERNEL: 'proc'})
  try {
    section(`A holder's exit to its lease's release event (${n} holders each, killed -9 one at a time)`, 'what | p50 ms | p99 ms (the slowest) | ratio, target')
    const from = cpuTimes()
    const kinds = [(await d.client.status()).kernel, (await dp.client.status()).kernel]
    const pidfd = await killTimes(d, n)
    const proc = await killTimes(dp, n)
    const ok = (xs: number[]) => xs.filter((x) => !Number.isNaN(x))
    const [a, b] = [ok(pidfd), ok(proc)]
    const missed = (xs: number[]) => (xs.length < n ? `; ${n - xs.length} not released within 5 s` : '')
    row(`daemon reading /proc, exits found by the reaper's rounds (${kinds[1].exits})`, f(pct(b, 50)), f(pct(b, 99)), `baseline${missed(proc)}`)
    row(`daemon with exit events (${kinds[0].exits})`, f(pct(a, 50), 2), f(pct(a, 99), 2), `${f(pct(b, 50) / pct(a, 50), 0)}x sooner at the p50 (target <= 20 ms)${missed(pidfd)}`)
    note(machineSince(from))
    target('holder exit -> lease.released event, p50', '<= 20 ms', `${f(pct(a, 50), 2)} ms (polling /proc daemon ${f(pct(b, 50), 0)} ms)`, a.length === n && pct(a, 50) <= 20)
  } finally {
    await stopDaemon(d)
    await stopDaemon(dp)
  }
}
