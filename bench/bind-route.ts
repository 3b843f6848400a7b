// The daemon's one bind route, `POST /v1/bind`, asked directly on a new connection per request (as the
// interceptor asks), against a bare node:http server doing the least the route must do, in the same run.
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {spawnHolder, killAll} from '../test/helpers/processes.js'
import {ASKBENCH, benchDaemon, cpuTimes, f, machineSince, median, note, pct, post, quick, row, section, series, startBaseline, stopDaemon, target, track} from './lib.js'

export async function bindRoute(): Promise<void> {
  const n = quick ? 300 : 2000
  // Every answer below is a new lease, held by this process until the section ends; the listen grace is long so
  // that no reaper tick releases thousands of them in the middle of a series.
  const scratch = track(spawnHolder())
  const d = await benchDaemon({STYXY_LISTEN_GRACE_MS: '3600000'})
  const base = await startBaseline()
  const token = fs.readFileSync(path.join(d.home, 'token'), 'utf8').trim()
  const unix = {socketPath: path.join(d.home, 'daemon.sock')}
  const tcp = {host: '127.0.0.1', port: d.port, token}
  const req = (port: number) => ({pid: scratch.pid!, port, command: 'bench'})
  try {
    section(`Bind route, a new connection per request (Node client, ${n} per series)`, 'what | p50 µs | p99 µs | p50 ratio to bare node:http')
    // Warm both processes' JIT before measuring, on both transports.
    await series(200, (i) => post(unix, req(12000 + (i % 50))))
    await series(200, (i) => post(tcp, req(12100 + (i % 50))))
    await series(200, () => post(base.unix, req(1)))
    await series(200, () => post(base.tcp, req(1)))
    const from = cpuTimes()
    const bu = await series(n, () => post(base.unix, req(1)))
    const du = await series(n, (i) => post(unix, req(14000 + i)))
    const bt = await series(n, () => post(base.tcp, req(1)))
    const dt = await series(n, (i) => post(tcp, req(17000 + i)))
    const ratio = pct(du, 50) / pct(bu, 50)
    row('bare node:http, Unix socket', f(pct(bu, 50)), f(pct(bu, 99)), '1.00')
    row('styxy /v1/bind, daemon\'s Unix socket', f(pct(du, 50)), f(pct(du, 99)), `${f(ratio, 2)} (target <= 1.5)`)
    row('bare node:http, TCP', f(pct(bt, 50)), f(pct(bt, 99)), '1.00')
    row('styxy /v1/bind, TCP + token', f(pct(dt, 50)), f(pct(dt, 99)), f(pct(dt, 50) / pct(bt, 50), 2))
    target('bind route p50 / bare node:http p50 (Unix socket)', '<= 1.5', `${f(ratio, 2)} (${f(pct(du, 50), 0)} vs ${f(pct(bu, 50), 0)} µs)`, ratio <= 1.5)
    note(machineSince(from))

    // A plain rate, no target (3,000 decisions/s was retired: nobody starts that many servers a second). Four C
    // clients asking as the interceptor does, three rounds alternating with the bare server; median round kept.
    const per = quick ? 100 : 250
    const perSecond = async (socketPath: string, first: number) => {
      const t0 = process.hrtime.bigint()
      await Promise.all([0, 1, 2, 3].map((i) => new Promise<void>((resolve, reject) => {
        const p = spawn(ASKBENCH, [socketPath, String(per), String(first + i * per), String(scratch.pid)], {stdio: ['ignore', 'pipe', 'inherit']})
        let out = ''
        p.stdout!.on('data', (c: Buffer) => (out += c))
        p.on('close', (code) => (code === 0 && / failed 0$/m.test(out) ? resolve() : reject(new Error(`askbench: ${code} ${out}`))))
      })))
      return (4 * per) / (Number(process.hrtime.bigint() - t0) / 1e9)
    }
    const bare: number[] = []
    const ours: number[] = []
    for (let r = 0; r < 3; r++) {
      bare.push(await perSecond(base.unix.socketPath, 1))
      ours.push(await perSecond(unix.socketPath, 20000 + r * 4 * per))
    }
    row('bare node:http, requests/s, 4 C clients at once', f(median(bare), 0), '', '1.00')
    row('styxy decisions/s, the same clients (a new lease each)', f(median(ours), 0), '', `${f(median(ours) / median(bare), 2)} of bare (rounds ${ours.map((x) => f(x, 0)).join(', ')} vs ${bare.map((x) => f(x, 0)).join(', ')}); no target`)
  } finally {
    await base.stop()
    await stopDaemon(d)
    await killAll([scratch])
  }
}
