import {expect} from 'chai'
import http from 'node:http'
import type net from 'node:net'
import path from 'node:path'
import type WebSocket from 'ws'
import type {StyxyEvent} from '../../src/protocol/events.js'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, spawnHolder} from '../helpers/processes.js'
import {latencies, report, rssMb, scaled, timed, within} from '../helpers/proof.js'
import {opened} from '../helpers/events.js'
import {Routes} from '../../src/protocol/routes.js'

const SERVICES = ['dev', 'api', 'ui', 'docs', 'test', 'proxy', 'build', 'monitoring']
const rand = (n: number) => Math.floor(Math.random() * n)

describe('load: sustained concurrent traffic with 20 live tails', () => {
  let d: TestDaemon
  const holders = Array.from({length: 6}, () => spawnHolder())
  before(async () => { d = await startDaemon() })
  after(async () => {
    await killAll(holders)
    await d.stop()
    removeHome(d.home)
  })

  it('binds over the socket, allocations over TCP, 20 tails over WebSocket: no error, no gap, memory flat', async function () {
    const durationMs = scaled(8000, 300_000)
    this.timeout(durationMs + 60_000)
    const tails: {ws: WebSocket; seqs: number[]}[] = Array.from({length: 20}, (_, i) => ({ws: d.client.events(i % 2 ? 'tcp' : 'unix'), seqs: []}))
    await Promise.all(tails.map(async (t) => {
      t.ws.on('message', (m) => t.seqs.push((JSON.parse(String(m)) as StyxyEvent).seq))
      await opened(t.ws)
    }))
    const bindMs: number[] = []
    const allocMs: number[] = []
    const releaseMs: number[] = []
    const errors: string[] = []
    let stop = false
    // Each worker owns its holder, so its releases never race another worker's.
    const binds = async (holder: number) => {
      while (!stop) {
        try {
          const b = await timed(bindMs, () => d.client.bind({pid: holder, port: 20000 + rand(10000), command: 'node server.js'}))
          await timed(releaseMs, () => d.client.release(b.leaseId!))
        } catch (error) { errors.push(String(error)) }
      }
    }
    const allocations = async (holder: number) => {
      while (!stop) {
        try {
          const a = await timed(allocMs, () => d.tcp.allocate({service: SERVICES[rand(SERVICES.length)], pid: holder}))
          await timed(releaseMs, () => d.tcp.release(a.id))
        } catch (error) { errors.push(String(error)) }
      }
    }
    // A warm-up second, so the "before" figure is the running daemon's, not the idle one's.
    const work = [binds(holders[0].pid!), binds(holders[1].pid!), binds(holders[2].pid!), binds(holders[3].pid!), allocations(holders[4].pid!), allocations(holders[5].pid!)]
    await new Promise((r) => setTimeout(r, 1000))
    const rssBefore = rssMb(d.pid)
    await new Promise((r) => setTimeout(r, durationMs - 1000))
    stop = true
    await Promise.all(work)
    const rssAfter = rssMb(d.pid)
    // Every tail saw every event, in order, without a gap.
    const last = Math.max(...tails.map((t) => t.seqs[t.seqs.length - 1] ?? 0))
    // The last events may still be on their way to the slowest tails (a fixed 200 ms wait was once too short).
    await within(5000, () => tails.every((t) => t.seqs[t.seqs.length - 1] === last), 'every tail has the last event').catch(() => {})
    const gaps = tails.map((t) => t.seqs.filter((s, i) => i > 0 && s !== t.seqs[i - 1] + 1).length)
    for (const t of tails) t.ws.close()
    const figures = {
      seconds: durationMs / 1000, requests: bindMs.length + allocMs.length + releaseMs.length, errors: errors.length,
      bindUnixMs: latencies(bindMs), allocateTcpMs: latencies(allocMs), releaseMs: latencies(releaseMs),
      tails: tails.length, eventsPerTail: tails[0].seqs.length, tailGaps: gaps.reduce((a, b) => a + b, 0), rssMb: {before: rssBefore, after: rssAfter},
    }
    report('load', figures)
    expect(errors.slice(0, 3)).to.deep.equal([])
    expect(gaps.every((g) => g === 0)).to.equal(true)
    expect(tails.every((t) => t.seqs[t.seqs.length - 1] === last)).to.equal(true)
    expect(bindMs.length).to.be.above(100)
    expect(rssAfter - rssBefore).to.be.below(15)
  })
})

describe('scale: 10,000 active leases and 1,000 listening sockets', () => {
  let empty: TestDaemon
  let full: TestDaemon
  const holders = Array.from({length: 10}, () => spawnHolder())
  const listeners: net.Server[] = []
  before(async () => {
    empty = await startDaemon()
    full = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '3600000'}})
  })
  after(async () => {
    await Promise.all(listeners.map(closeServer))
    await killAll(holders)
    for (const d of [empty, full]) {
      await d.stop()
      removeHome(d.home)
    }
  })

  it('decision p50 within 1.2x of an empty table, observation steady, RSS < 100 MB', async function () {
    this.timeout(scaled(120_000, 900_000))
    const decide = (d: TestDaemon, h: number, port: number) => d.client.bind({pid: holders[h].pid!, port})
    const observe = (d: TestDaemon, port: number) => d.client.port(port)
    // Interleaved, so both daemons see the same machine at the same moments.
    const measure = async (n: number) => {
      const out = {emptyDecide: [] as number[], fullDecide: [] as number[], emptyObserve: [] as number[], fullObserve: [] as number[]}
      for (let i = 0; i < n; i++) {
        const port = 30000 + rand(2000)
        // Alternate which goes first, so neither gets the warmer caches every time.
        for (const d of i % 2 ? [empty, full] : [full, empty]) {
          await timed(d === empty ? out.emptyDecide : out.fullDecide, () => decide(d, 9, port))
          await timed(d === empty ? out.emptyObserve : out.fullObserve, () => observe(d, port))
        }
      }
      return out
    }
    const quiet = await measure(scaled(30, 500))
    for (let i = 0; i < 1000; i++) listeners.push(await listenOn('127.0.0.1'))
    // Filling is set-up, not the measurement: real bind requests, on kept-alive connections to go faster.
    const agent = new http.Agent({keepAlive: true, maxSockets: 8})
    const fill = (w: number, port: number) => new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({pid: holders[w].pid, port})
      const req = http.request({socketPath: path.join(full.home, 'daemon.sock'), agent, method: 'POST', path: Routes.bind.path,
        headers: {host: 'localhost', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body)}}, (res) => {
        res.resume()
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`fill: HTTP ${res.statusCode}`))))
      })
      req.on('error', reject)
      req.end(body)
    })
    let next = 20000
    const t0 = Date.now()
    await Promise.all(Array.from({length: 8}, async (_, w) => {
      while (next < 30000) await fill(w, next++)
    }))
    agent.destroy()
    const fillSeconds = (Date.now() - t0) / 1000
    const leases = (await full.client.status()).leases
    expect(leases).to.be.at.least(10_000)
    const loaded = await measure(scaled(100, 2000))
    const p50 = (xs: number[]) => latencies(xs).p50
    const ratio = p50(loaded.fullDecide) / p50(loaded.emptyDecide)
    const rss = rssMb(full.pid)
    report('scale', {
      leases, listeners: listeners.length, fillSeconds,
      decisionP50Ms: {empty: p50(loaded.emptyDecide), full: p50(loaded.fullDecide), ratio: Math.round(ratio * 100) / 100, emptyBeforeListeners: p50(quiet.emptyDecide)},
      observationP50Ms: {empty: p50(loaded.emptyObserve), full: p50(loaded.fullObserve), emptyBeforeListeners: p50(quiet.emptyObserve)},
      rssMb: {empty: rssMb(empty.pid), full: rss},
    })
    expect(ratio).to.be.at.most(1.2)
    expect(p50(loaded.fullObserve) / p50(loaded.emptyObserve)).to.be.at.most(1.5)
    expect(rss).to.be.below(100)
  })
})
