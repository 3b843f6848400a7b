import {expect} from 'chai'
import type {ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type {StyxyClient} from '../../src/client/client.js'
import {Routes} from '../../src/protocol/routes.js'
import type {StyxyEvent} from '../../src/protocol/events.js'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {within} from '../helpers/proof.js'
import {nextEvent, opened} from '../helpers/events.js'

// The reaper is off (10 minutes), so only the watch can release anything within these tests.
const NO_REAPER = {STYXY_REAP_INTERVAL_MS: '600000'}

/** The exit watch over TCP, framed by hand: the typed client holds it on the Unix socket only. */
function holdOverTcp(d: TestDaemon, body: object): net.Socket {
  const token = fs.readFileSync(path.join(d.home, 'token'), 'utf8').trim()
  const json = JSON.stringify(body)
  const s = net.connect({host: '127.0.0.1', port: d.port})
  s.on('error', () => {})
  s.write(`POST ${Routes.exitWatch.path} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`)
  return s
}

for (const via of ['unix', 'tcp'] as const) {
  describe(`POST /v1/exit-watch over ${via}`, () => {
    let d: TestDaemon
    let c: StyxyClient
    before(async () => {
      d = await startDaemon({env: NO_REAPER})
      c = via === 'unix' ? d.client : d.tcp
    })
    after(async () => {
      await d.stop()
      removeHome(d.home)
    })

    /** Open a watch and wait until the daemon holds it; returns how to end it. */
    async function watch(body: {pid: number; leaseId?: string}): Promise<() => Promise<void>> {
      const before = (await c.status()).watchedRuns
      let end: () => Promise<void>
      if (via === 'unix') {
        const held = d.client.watchExit(body)
        end = () => held.end()
      } else {
        const s = holdOverTcp(d, body)
        end = async () => { s.destroy() }
      }
      await within(5000, async () => (await c.status()).watchedRuns === before + 1, 'the daemon holds the watch')
      return end
    }

    const released = (ws: ReturnType<StyxyClient['events']>, id: string) =>
      nextEvent(ws, (e: StyxyEvent) => e.type === 'lease.released' && e.data.id === id)

    const holders: ChildProcess[] = []
    afterEach(async () => { await killAll(holders.splice(0)) })

    /** A run as the daemon sees it: its command's bind, its own allocation, and its exit watch, held. */
    async function aRun(port: number) {
      const [command, runner] = [spawnHolder(), spawnHolder()]
      holders.push(command, runner)
      const bound = await c.bind({pid: command.pid!, port})
      const own = await c.allocate({service: 'docs', pid: runner.pid!})
      const end = await watch({pid: command.pid!, leaseId: own.id})
      return {command, bound, own, end}
    }

    it("the command's exit releases its leases at once; the run's own lease goes when the run ends", async () => {
      const {command, bound, own, end} = await aRun(3090)
      const ws = c.events(via)
      await opened(ws)
      const commandGone = released(ws, bound.leaseId!)
      await killAll([command])
      // An exit is an event (pidfd), not something the run's end or a reaper tick must find: the reaper is off here.
      const exited = await commandGone
      expect(exited.type === 'lease.released' && exited.data.reason).to.equal('holder-exited')
      expect((await c.leases()).map((l) => l.id)).to.include(own.id)
      const runGone = released(ws, own.id)
      await end()
      const event = await runGone
      ws.close()
      expect(event.type === 'lease.released' && event.data.reason).to.equal('released')
      const ids = (await c.leases()).map((l) => l.id)
      expect(ids).to.not.include(bound.leaseId)
      expect(ids).to.not.include(own.id)
      expect((await c.status()).watchedRuns).to.equal(0)
    })

    it('a command that outlives its run (the run was killed) keeps its leases; the run\'s own lease goes', async () => {
      const {bound, own, end} = await aRun(3091)
      const ws = c.events(via)
      await opened(ws)
      const gone = released(ws, own.id)
      await end()
      await gone
      ws.close()
      const ids = (await c.leases()).map((l) => l.id)
      expect(ids).to.include(bound.leaseId)
      expect(ids).to.not.include(own.id)
    })

    it('a body that does not validate is refused at once, and nothing is held', async () => {
      const r = await c.raw('POST', Routes.exitWatch.path, {pid: 'x'})
      expect(r.status).to.equal(422)
      expect(JSON.parse(r.body).error.code).to.equal('VALIDATION_FAILED')
      expect((await c.status()).watchedRuns).to.equal(0)
    })
  })
}

describe('exit watches and the daemon itself', () => {
  it('a daemon that stops while holding watches releases nothing: the runs were not over', async () => {
    const d = await startDaemon({env: NO_REAPER})
    const runner = spawnHolder()
    try {
      const own = await d.client.allocate({service: 'docs', pid: runner.pid!})
      d.client.watchExit({pid: runner.pid!, leaseId: own.id})
      await within(5000, async () => (await d.client.status()).watchedRuns === 1, 'the daemon holds the watch')
      expect(await d.stop()).to.equal(0)
      // Nothing tried to release on the way down (against a store already closed, that would be an error).
      expect(d.output()).to.not.match(/exit-watch|internal error|storage/i)
      const again = await startDaemon({home: d.home, env: NO_REAPER})
      try {
        expect((await again.client.leases()).map((l) => l.id)).to.include(own.id)
      } finally {
        await again.stop()
      }
    } finally {
      await killAll([runner])
      await d.stop()
      removeHome(d.home)
    }
  })
})
