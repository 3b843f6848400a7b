// Issue 17 item 1: event subscribers that never read, while events stream, against a daemon with its usual
// 96 MB heap cap (DAEMON_NODE_FLAGS). The daemon must stay up and answering, drop the slow ones with close
// 4008 (slowest first), bound what they hold together, and keep serving a subscriber that reads.
import {expect} from 'chai'
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import type WebSocket from 'ws'
import {PROJECT_ROOT} from '../../src/project.js'
import {CloseCodes, type StyxyEvent} from '../../src/protocol/events.js'
import {CLI, removeHome, runCli, startDaemon, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {DAEMON_ENTRY, DAEMON_NODE_FLAGS} from '../../src/client/ensure-daemon.js'
import {opened} from '../helpers/events.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {report, rssMb, scaled, within} from '../helpers/proof.js'
import {HUB_LIMITS} from '../../src/daemon/hub.js'

const SLOW = path.join(PROJECT_ROOT, 'test', 'fixtures', 'slow_subscribers.py')

async function metric(d: TestDaemon, name: string): Promise<number> {
  const m = (await d.client.metrics()).match(new RegExp(`^${name} (\\d+)`, 'm'))
  return m ? Number(m[1]) : NaN
}

/**
 * `count` subscribers over the Unix socket that never read, in one Python process. Not over TCP: there the
 * kernel's send buffer grows to megabytes per connection first (loopback tunes it up), so the daemon's heap
 * is hardly touched; the Unix socket's stays near 200 KB, and the rest waits in the heap.
 */
async function neverReading(d: TestDaemon, count: number): Promise<{collect(): Promise<Record<string, number>>; proc: ChildProcess}> {
  const proc = spawn('python3', [SLOW, path.join(d.home, 'daemon.sock'), String(count)], {stdio: ['pipe', 'pipe', 'inherit']})
  let out = ''
  proc.stdout!.on('data', (c) => (out += c))
  await within(20_000, () => out.includes(`ready ${count}`), 'the slow subscribers connected')
  return {
    proc,
    async collect() {
      proc.stdin!.write('collect\n')
      await new Promise((r) => proc.once('exit', r))
      return JSON.parse(out.split('\n').filter(Boolean).pop()!) as Record<string, number>
    },
  }
}

describe('faults: event subscribers that do not read', () => {
  const figures: Record<string, unknown> = {}
  const holder = spawnHolder()
  after(async () => {
    await killAll([holder])
    report('slow-subscribers', figures)
  })

  it('hundreds that never read while events stream: the daemon stays up, drops them (4008), bounds their memory, keeps a reader served', async function () {
    this.timeout(180_000)
    const d = await startDaemon()
    const raw = scaled(300, 400)
    const paused: {ws: WebSocket; code: Promise<number>}[] = []
    let slow: Awaited<ReturnType<typeof neverReading>> | undefined
    try {
      // A subscriber that reads, and some over the socket whose reading stops (paused, as a stopped tail's would).
      const reader = d.client.events()
      await opened(reader)
      const seen: number[] = []
      reader.on('message', (m: Buffer) => seen.push((JSON.parse(m.toString()) as StyxyEvent).seq))
      for (let i = 0; i < 20; i++) {
        const ws = d.client.events()
        await opened(ws)
        ;(ws as unknown as {_socket: net.Socket})._socket.pause()
        paused.push({ws, code: new Promise((resolve) => ws.once('close', (c: number) => resolve(c)))})
      }
      slow = await neverReading(d, raw)
      await within(30_000, async () => (await metric(d, 'styxy_event_subscribers')) === raw + 21, `${raw + 21} subscribers`)
      const subscribed = raw + 21
      const rssStart = rssMb(d.pid)

      // Events: allocations and releases over the client, four at a time. Enough that the old hub (1 MiB per
      // subscriber, no total) ran out of heap here.
      const pairs = scaled(1500, 5000)
      let done = 0
      let maxHeld = 0
      const worker = async () => {
        while (done < pairs) {
          done++
          const a = await d.client.allocate({service: 'dev', pid: holder.pid!, name: 'slow-subscribers'})
          await d.client.release(a.id)
        }
      }
      const watch = setInterval(() => void metric(d, 'styxy_event_held_bytes').then((b) => { maxHeld = Math.max(maxHeld, b) }, () => {}), 200)
      const t0 = Date.now()
      try {
        await Promise.all([worker(), worker(), worker(), worker()])
      } finally {
        clearInterval(watch)
      }
      const streamMs = Date.now() - t0

      // Still the same daemon, answering; every slow one dropped; the reader got every event, in order.
      expect((await d.client.health()).pid).to.equal(d.pid)
      const dropped = await metric(d, 'styxy_event_subscribers_dropped_total')
      expect(dropped).to.be.at.least(raw + 20)
      const last = seen[seen.length - 1]
      expect(seen.length).to.be.at.least(2 * pairs)
      expect(seen.every((s, i) => i === 0 || s === seen[i - 1] + 1), 'a gap in the reader\'s events').to.equal(true)
      expect(reader.readyState).to.equal(reader.OPEN)
      const heapMb = (await metric(d, 'styxy_heap_used_bytes')) / 1048576
      expect(heapMb).to.be.below(64)

      // The slow ones, once they read: each ended with close 4008, or was cut when the room was needed.
      const ends = await slow.collect()
      for (const p of paused) (p.ws as unknown as {_socket: net.Socket})._socket.resume()
      const codes = await Promise.all(paused.map((p) => p.code))
      expect(Object.keys(ends).filter((k) => k !== `close:${CloseCodes.TOO_SLOW}` && k !== 'eof'), JSON.stringify(ends)).to.deep.equal([])
      expect(codes.filter((c) => c !== CloseCodes.TOO_SLOW && c !== 1006), codes.join(' ')).to.deep.equal([])
      expect(codes.filter((c) => c === CloseCodes.TOO_SLOW).length + (ends[`close:${CloseCodes.TOO_SLOW}`] ?? 0)).to.be.above(0)
      await within(10_000, async () => (await metric(d, 'styxy_event_subscribers')) === 1, 'only the reader left')
      Object.assign(figures, {
        subscribers: subscribed, neverReading: raw, paused: paused.length, pairs, events: last, streamMs, dropped,
        rawEnds: ends, pausedWith4008: codes.filter((c) => c === CloseCodes.TOO_SLOW).length,
        maxHeldMb: Math.round(maxHeld / 104857.6) / 10, limitMb: HUB_LIMITS.total / 1048576, heapEndMb: Math.round(heapMb * 10) / 10,
        rssStartMb: rssStart, rssEndMb: rssMb(d.pid),
      })
      expect(maxHeld).to.be.at.most(HUB_LIMITS.total + HUB_LIMITS.perSubscriber)
    } finally {
      slow?.proc.kill()
      for (const p of paused) p.ws.terminate()
      await d.stop()
      removeHome(d.home)
    }
  })

  it(`subscribers beyond ${HUB_LIMITS.maxSubscribers} are refused (503 TOO_MANY_SUBSCRIBERS); the daemon answers on`, async function () {
    this.timeout(60_000)
    const d = await startDaemon()
    const slow = await neverReading(d, HUB_LIMITS.maxSubscribers)
    try {
      await within(30_000, async () => (await metric(d, 'styxy_event_subscribers')) === HUB_LIMITS.maxSubscribers, 'all subscribed')
      const ws = d.client.events()
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.once('open', () => resolve(101))
        ws.once('error', () => {})
      })
      expect(status).to.equal(503)
      expect((await d.client.health()).pid).to.equal(d.pid)
    } finally {
      slow.proc.kill()
      await d.stop()
      removeHome(d.home)
    }
  })

  it('a `styxy tail` that stops reading is dropped with 4008, says so in one line, reconnects and goes on', async function () {
    this.timeout(120_000)
    const d = await startDaemon()
    const tail = spawn(process.execPath, [CLI, 'tail'], {env: d.env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    tail.stdout!.on('data', (c) => (out += c))
    tail.stderr!.on('data', (c) => (err += c))
    try {
      await within(20_000, async () => (await metric(d, 'styxy_event_subscribers')) === 1, 'the tail subscribed')
      process.kill(tail.pid!, 'SIGSTOP')
      // Binds with long command lines: large events, so its backlog passes the per-subscriber limit sooner.
      let port = 20000
      while ((await metric(d, 'styxy_event_subscribers_dropped_total')) === 0) {
        for (let i = 0; i < 20; i++) await d.client.bind({pid: holder.pid!, port: port++, command: `server ${'x'.repeat(2000)}`})
        expect(port).to.be.below(24000)
      }
      process.kill(tail.pid!, 'SIGCONT')
      await within(20_000, () => /\(reconnected\)/.test(err), 'the tail reconnected')
      expect(err).to.contain(`(dropped by the daemon: this tail fell behind (close ${CloseCodes.TOO_SLOW}); reconnecting, events meanwhile are missed)`)
      // After the reconnection it shows new events, and how many it missed.
      await d.client.bind({pid: holder.pid!, port: 24500, command: 'after the reconnection'})
      await within(20_000, () => out.includes('after the reconnection'), 'the tail shows a new event')
      expect(err).to.match(/\(missed \d+ event\(s\) while away\)/)
      figures.tailBindsUntilDropped = port - 20000
    } finally {
      process.kill(tail.pid!, 'SIGCONT')
      tail.kill()
      await d.stop()
      removeHome(d.home)
    }
  })

  it('a daemon stopped while a subscriber does not read exits at once: it does not linger without its lock beside the next one', async function () {
    this.timeout(60_000)
    const home = tempHome()
    const d = await startDaemon({home})
    try {
      // A raw subscriber over the socket that never reads, so the close handshake can never finish.
      const s = net.connect(path.join(home, 'daemon.sock'))
      s.write('GET /v1/events HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
      s.pause()
      await within(10_000, async () => (await metric(d, 'styxy_event_subscribers')) === 1, 'subscribed')
      const t0 = Date.now()
      await d.stop()
      const ms = Date.now() - t0
      figures.stopWithStuckSubscriberMs = ms
      expect(ms).to.be.below(5000) // ws's own close timeout is 30 s
      s.destroy()
      // The next daemon starts on the same directory as usual.
      const next = await startDaemon({home})
      await next.stop()
    } finally {
      await d.stop()
      removeHome(home)
    }
  })

  it('a daemon too busy to act on SIGTERM (stopped here) keeps its lock: neither `daemon start` nor a second daemon runs beside it', async function () {
    this.timeout(60_000)
    const d = await startDaemon()
    try {
      process.kill(d.pid, 'SIGSTOP')
      process.kill(d.pid, 'SIGTERM') // pending until it runs again, as in a daemon thrashing at its heap cap
      const start = await runCli(['daemon', 'start'], d.env)
      expect(start.code, start.stdout).to.equal(3)
      expect(start.stderr).to.match(/did not answer/)
      const direct = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_ENTRY], {env: {...d.env, STYXY_DAEMON_PORT: '0'}, encoding: 'utf8', timeout: 20_000})
      expect(direct.status, direct.stderr).to.equal(1)
      expect(direct.stderr).to.match(/already running/)
      process.kill(d.pid, 'SIGCONT')
      const code = await d.stop()
      expect(code, `signal ${d.child.signalCode}\n${d.output().slice(-800)}`).to.equal(0) // it acts on the SIGTERM once it runs
      const again = await runCli(['daemon', 'start'], d.env)
      expect(again.code, again.stderr).to.equal(0)
      expect((await runCli(['daemon', 'stop'], d.env)).code).to.equal(0)
    } finally {
      try { process.kill(d.pid, 'SIGCONT') } catch { /* gone */ }
      await d.stop()
      removeHome(d.home)
    }
  })
})
