// The names proxy's cost per request: the same small GET to a node:http server, directly and through the
// daemon's proxy by NAME.localhost, in alternating rounds of the same run; one keep-alive connection each, as a
// browser keeps one. A section of `make bench` (STYXY_BENCH_ONLY=proxy).
import {spawn} from 'node:child_process'
import http from 'node:http'
import {removeHome, startDaemon} from '../test/helpers/daemon.js'
import {combine, f, ms, pct, quick, row, section, type Bench} from './lib.js'

const SERVER = "const s=require('http').createServer((q,r)=>r.end('ok'));process.stdin.once('data',(d)=>s.listen(+d,'127.0.0.1',()=>console.log('ready')))"

function timeRequests(n: number, port: number, host: string): Promise<Bench> {
  const agent = new http.Agent({keepAlive: true, maxSockets: 1})
  const times: number[] = []
  let failed = 0
  const one = () => new Promise<void>((resolve) => {
    const t0 = process.hrtime.bigint()
    http.get({host: '127.0.0.1', port, path: '/', agent, headers: {host}}, (res) => {
      res.resume()
      res.on('end', () => {
        if (res.statusCode === 200) times.push(Number(process.hrtime.bigint() - t0) / 1000)
        else failed++
        resolve()
      })
    }).on('error', () => { failed++; resolve() })
  })
  return (async () => {
    for (let i = 0; i < n; i++) await one()
    agent.destroy()
    return {p50: pct(times, 50), p99: pct(times, 99), failed}
  })()
}

export async function namesProxy(): Promise<void> {
  const n = quick ? 300 : 3000
  const rounds = 4
  const d = await startDaemon()
  const server = spawn(process.execPath, ['-e', SERVER], {stdio: ['pipe', 'pipe', 'inherit']})
  try {
    const proxyPort = (await d.client.health()).proxyPort!
    const lease = await d.client.allocate({service: 'dev', pid: server.pid!, name: 'bench'})
    server.stdin!.write(String(lease.port))
    await new Promise((resolve) => server.stdout!.once('data', resolve))
    const direct: Bench[] = []
    const proxied: Bench[] = []
    for (let k = 0; k < rounds; k++) {
      direct.push(await timeRequests(n / rounds, lease.port, `127.0.0.1:${lease.port}`))
      proxied.push(await timeRequests(n / rounds, proxyPort, `bench.localhost:${proxyPort}`))
    }
    const a = combine(direct)
    const b = combine(proxied)
    section(`The names proxy: ${n} sequential keep-alive GETs each way, ${rounds} alternating rounds`)
    row('GET straight to the server', ms(a.p50), ms(a.p99), `baseline${a.failed ? `; ${a.failed} failed` : ''}`)
    row('GET through the proxy (bench.localhost)', ms(b.p50), ms(b.p99), `${f(b.p50 / a.p50, 2)}x the direct p50, +${ms(b.p50 - a.p50)} per request${b.failed ? `; ${b.failed} failed` : ''}`)
  } finally {
    server.kill()
    await d.stop()
    removeHome(d.home)
  }
}

