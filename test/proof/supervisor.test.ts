import {expect} from 'chai'
import {spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import {PROJECT_ROOT} from '../../src/project.js'
import {StyxyClient} from '../../src/client/client.js'
import {endpointFromEnv} from '../../src/client/transport.js'
import {DAEMON_ENTRY, DAEMON_NODE_FLAGS} from '../../src/client/ensure-daemon.js'
import {isolatedEnv, removeHome, tempHome} from '../helpers/daemon.js'
import {freePort, killAll, spawnHolder} from '../helpers/processes.js'
import {latencies, report, scaled} from '../helpers/proof.js'

// Issue 17, item 2: a crashed daemon stayed dead. Under a supervisor (systemd's socket and service units, or
// test/fixtures/supervise.py acting as systemd does where there is no user manager) the listeners outlive the
// daemon, which takes them from LISTEN_FDS and says READY=1 to NOTIFY_SOCKET.

const SUPERVISE = path.join(PROJECT_ROOT, 'test', 'fixtures', 'supervise.py')

interface SupervisorEvent {
  event: 'listening' | 'started' | 'notify' | 'exited'
  t: number
  pid?: number
  sender?: number | null
  fields?: Record<string, string>
  code?: number | null
  signal?: number | null
  socket?: string
  port?: number
}

interface Supervised {
  proc: ChildProcess
  env: NodeJS.ProcessEnv
  client: StyxyClient
  tcp: StyxyClient
  port: number
  socket: string
  /** The next event (after those already taken) that matches. */
  next(pred: (e: SupervisorEvent) => boolean, what: string, timeoutMs?: number): Promise<SupervisorEvent>
  log(): string
  stop(): Promise<void>
}

async function supervise(home: string, opts: {lazy?: boolean} = {}): Promise<Supervised> {
  const port = await freePort()
  const env = isolatedEnv(home, port)
  const socket = path.join(home, 'daemon.sock')
  const proc = spawn('python3', [SUPERVISE, '--socket', socket, '--port', String(port), ...(opts.lazy ? ['--lazy'] : []), '--', process.execPath, ...DAEMON_NODE_FLAGS, DAEMON_ENTRY], {env, stdio: ['pipe', 'pipe', 'pipe']})
  const events: SupervisorEvent[] = []
  let taken = 0
  let err = ''
  let buf = ''
  const waiters: (() => void)[] = []
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString()
    let nl: number
    while ((nl = buf.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buf.slice(0, nl)))
      buf = buf.slice(nl + 1)
    }
    for (const w of waiters.splice(0)) w()
  })
  proc.stderr!.on('data', (c) => (err += c))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const next = (pred: (e: SupervisorEvent) => boolean, what: string, timeoutMs = 15_000) => new Promise<SupervisorEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms; supervisor's output:\n${err}`)), timeoutMs)
    const look = () => {
      for (; taken < events.length; taken++) {
        if (pred(events[taken])) {
          clearTimeout(timer)
          resolve(events[taken++])
          return
        }
      }
      waiters.push(look)
    }
    look()
  })
  const listening = await next((e) => e.event === 'listening', 'listening')
  expect(listening.port).to.equal(port)
  const endpoint = endpointFromEnv(env)
  return {
    proc, env, port, socket, next, log: () => err,
    client: new StyxyClient({endpoint, timeoutMs: 10_000}),
    tcp: new StyxyClient({endpoint: {...endpoint, only: 'tcp'}, timeoutMs: 10_000}),
    async stop() {
      proc.stdin!.end()
      await exited
    },
  }
}

const isReady = (pid?: number) => (e: SupervisorEvent) => e.event === 'notify' && e.fields?.READY === '1' && (pid === undefined || e.sender === pid)

describe('proof: the daemon under a supervisor (socket activation)', () => {
  it('takes its listeners from LISTEN_FDS, says READY=1 from its own pid, and leaves the socket to the supervisor', async () => {
    const home = tempHome()
    const s = await supervise(home, {lazy: true})
    try {
      // Nothing runs yet: the first connection starts the daemon, and is answered by it.
      const health = await s.client.health()
      const started = await s.next((e) => e.event === 'started', 'a start')
      expect(health.pid).to.equal(started.pid)
      const ready = await s.next(isReady(), 'READY=1')
      expect(ready.sender, 'the kernel\'s credentials on the datagram: the main pid, as NotifyAccess=main wants').to.equal(started.pid)
      expect(ready.fields?.MAINPID).to.equal(String(started.pid))
      // The TCP fd was taken for TCP: the token is required there, as on a listener of the daemon's own.
      expect((await s.tcp.health()).pid).to.equal(started.pid)
      const bare = await new Promise<number>((resolve, reject) => {
        http.get({host: '127.0.0.1', port: s.port, path: '/v1/status', agent: false}, (res) => { res.resume(); resolve(res.statusCode!) }).on('error', reject)
      })
      expect(bare).to.equal(401)
      expect(s.log()).to.contain(`listeners from the supervisor: Unix socket ${s.socket} (fd 3), TCP 127.0.0.1:${s.port} (fd 4)`)

      // A clean stop leaves the supervisor's socket where it is, still accepting; the next connection starts a new daemon.
      const ino = fs.statSync(s.socket).ino
      process.kill(started.pid!, 'SIGTERM')
      const stopping = await s.next((e) => e.event === 'notify' && e.fields?.STOPPING === '1', 'STOPPING=1')
      expect(stopping.sender).to.equal(started.pid)
      const exit = await s.next((e) => e.event === 'exited', 'the exit')
      expect(exit).to.include({pid: started.pid, code: 0})
      expect(fs.statSync(s.socket).ino, 'the inherited socket file was not unlinked').to.equal(ino)
      const again = await s.client.health()
      expect(again.pid).to.not.equal(started.pid)
      await s.next(isReady(again.pid), 'READY=1 from the second daemon')
    } finally {
      await s.stop()
      removeHome(home)
    }
  })

  it('kill -9: a request made while the daemon is down is answered by its successor, and no lease is lost', async function () {
    const rounds = scaled(5, 50)
    this.timeout(30_000 + rounds * 10_000)
    const home = tempHome()
    const s = await supervise(home)
    const holders = Array.from({length: 4}, () => spawnHolder())
    const restartMs: number[] = []
    const answerMs: number[] = []
    try {
      let pid = (await s.next((e) => e.event === 'started', 'the first start')).pid!
      await s.next(isReady(pid), 'READY=1')
      const leases = new Map<string, number>()
      for (let round = 0; round < rounds; round++) {
        for (const h of holders) {
          const a = await s.client.allocate({service: 'dev', pid: h.pid!})
          leases.set(a.id, a.port)
        }
        // A long run stays inside the dev range (100 ports): the oldest leases go, answered releases too.
        while (leases.size > 40) {
          const [oldest] = leases.keys()
          await s.client.release(oldest)
          leases.delete(oldest)
        }
        const killedAt = performance.now()
        process.kill(pid, 'SIGKILL')
        // Asked at once, while nothing accepts: the connection waits in the supervisor's socket.
        const asked = s.client.health().then((h) => ({h, ms: performance.now() - killedAt}))
        const exit = await s.next((e) => e.event === 'exited', `round ${round}: the exit`)
        expect(exit).to.include({pid, signal: 9})
        const next = (await s.next((e) => e.event === 'started', `round ${round}: the restart`)).pid!
        await s.next(isReady(next), `round ${round}: READY=1`)
        restartMs.push(performance.now() - killedAt)
        const {h, ms} = await asked
        expect(h.pid, 'answered by the successor').to.equal(next)
        answerMs.push(ms)
        const now = new Map((await s.client.leases()).map((l) => [l.id, l.port]))
        for (const [id, port] of leases) expect(now.get(id), `lease ${id} (port ${port}) after round ${round}`).to.equal(port)
        pid = next
      }
      report('supervisor', {kills: rounds, allocations: rounds * holders.length, leasesCheckedAtEnd: leases.size, lost: 0, killToReadyMs: latencies(restartMs), requestWhileDownMs: latencies(answerMs)})
    } finally {
      await killAll(holders)
      await s.stop()
      removeHome(home)
    }
  })
})
