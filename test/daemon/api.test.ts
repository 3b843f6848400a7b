import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {ApiError, type StyxyClient} from '../../src/client/client.js'
import type {StyxyEvent} from '../../src/protocol/events.js'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, portOf, spawnHolder} from '../helpers/processes.js'
import {nextEvent, opened} from '../helpers/events.js'

async function rejected(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p
  } catch (error) {
    expect(error).to.be.instanceOf(ApiError)
    return error as ApiError
  }
  throw new Error('expected the daemon to refuse')
}

for (const via of ['unix', 'tcp'] as const) {
  describe(`daemon API over ${via}`, () => {
    let d: TestDaemon
    let c: StyxyClient
    const holders = [spawnHolder(), spawnHolder()]

    before(async () => {
      d = await startDaemon()
      c = via === 'unix' ? d.client : d.tcp
    })
    after(async () => {
      await killAll(holders)
      await d.stop()
      removeHome(d.home)
    })

    it('GET /v1/health and /v1/status', async () => {
      const h = await c.health()
      expect(h).to.include({ok: true, pid: d.pid})
      const s = await c.status()
      expect(s.pid).to.equal(d.pid)
      expect(s.paths.socket).to.equal(path.join(d.home, 'daemon.sock'))
      expect(s.tcp.port).to.equal(d.port)
    })

    it('GET /v1/service-types lists the 17 types', async () => {
      const types = await c.serviceTypes()
      expect(types.map((t) => t.name)).to.include.members(['dev', 'api', 'storybook', 'ai', 'coordination'])
      expect(types).to.have.length(17)
    })

    it('POST /v1/allocations leases the preferred port, then the next; GET lists; DELETE releases', async () => {
      const a = await c.allocate({service: 'docs', name: 'site'})
      expect(a).to.include({port: 4100, service: 'docs', kind: 'allocation', name: 'site', joined: false})
      const b = await c.allocate({service: 'docs', port: 4100})
      // The next port of the range that nothing holds (an earlier test's TIME_WAIT may hold 4101).
      expect(b.port).to.be.within(4101, 4199)
      const all = await c.leases('docs')
      expect(all.map((l) => l.port)).to.deep.equal([4100, b.port])
      expect((await c.release(a.id)).port).to.equal(4100)
      expect((await c.release(b.port)).id).to.equal(b.id)
      expect(await c.leases('docs')).to.deep.equal([])
      expect((await rejected(c.release(a.id))).code).to.equal('NOT_FOUND')
    })

    it('GET /v1/allocations answers every lease when there are hundreds (sent in pieces)', async () => {
      const asked = Array.from({length: 300}, (_, i) => 31000 + i) // more than one piece (256)
      const ids = new Map<number, string>()
      // Made and released over the socket whatever the transport under test: only the listing is what is tested.
      for (const port of asked) ids.set(port, (await d.client.bind({pid: holders[1].pid!, port})).leaseId!)
      try {
        const listed = (await c.leases()).filter((l) => l.pid === holders[1].pid)
        expect(listed.map((l) => [l.port, l.id])).to.deep.equal(asked.map((p) => [p, ids.get(p)]))
      } finally {
        for (const id of ids.values()) await d.client.release(id)
      }
    })

    it('a singleton type shares its one holder', async () => {
      const a = await c.allocate({service: 'ai'})
      const b = await c.allocate({service: 'ai'})
      expect(b).to.include({id: a.id, port: a.port, joined: true})
      await c.release(a.id)
    })

    it('refuses unknown types, listing the valid ones', async () => {
      const e = await rejected(c.allocate({service: 'nope'}))
      expect(e.code).to.equal('UNKNOWN_SERVICE')
      expect(e.message).to.match(/dev, api/)
    })

    it('GET /v1/ports/:port tells bound (with pid) from leased', async () => {
      const server = await listenOn('127.0.0.1')
      try {
        const info = await c.port(portOf(server))
        expect(info.bound).to.equal(true)
        expect(info.listeners[0]).to.include({pid: process.pid, family: 'ipv4', address: '127.0.0.1'})
        expect(info.leased).to.equal(false)
      } finally {
        await closeServer(server)
      }
      const lease = await c.allocate({service: 'hub'})
      const info = await c.port(lease.port)
      expect(info).to.include({leased: true, bound: false, service: 'hub'})
      expect(info.lease!.id).to.equal(lease.id)
      await c.release(lease.id)
    })

    it('GET /v1/suggest/:service skips taken ports; an unknown type is refused (the legacy route falls back to dev)', async () => {
      const lease = await c.allocate({service: 'build'})
      const s = await c.suggest('build', 3)
      expect(s.ports).to.have.length(3)
      expect(s.ports).to.not.include(lease.port)
      const unknown = await c.suggest('no-such-type', 1).then(() => null, (e: {code: string; status: number}) => e)
      expect(unknown).to.include({code: 'UNKNOWN_SERVICE', status: 422})
      await c.release(lease.id)
    })

    it('POST /v1/bind allows, then remaps a leased port, records the move, and repeats per process', async () => {
      const pid = holders[0].pid!
      const first = await c.bind({pid, port: 9200})
      expect(first).to.include({action: 'allow', port: 9200, service: 'test', repeat: false})
      const other = await c.bind({pid: holders[1].pid!, port: 9200, command: 'npx vitest', cwd: '/proj'})
      // Moved within the test type's range (9200-9299): 9201 unless this machine has a listener there.
      expect(other).to.include({action: 'remap', requestedPort: 9200, repeat: false, service: 'test'})
      expect(other.port).to.be.within(9201, 9299)
      const again = await c.bind({pid: holders[1].pid!, port: 9200})
      expect(again).to.include({action: 'remap', port: other.port, repeat: true, leaseId: other.leaseId})
      const trail = await c.reassignments()
      expect(trail.at(-1)).to.include({pid: holders[1].pid, from: 9200, to: other.port, service: 'test'})
      const audit = fs.readFileSync(path.join(d.home, 'reassignments.log'), 'utf8')
      expect(audit).to.match(new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\] PID ${holders[1].pid}: Port 9200 -> ${other.port} \\(service: test\\)$`, 'm'))
      await c.release(first.leaseId!)
      await c.release(other.leaseId!)
    })

    it('POST /v1/bind: newLease says the port was leased anew; after a retry the latest answer is repeated, even a lower port', async () => {
      const pid = holders[0].pid!
      const first = await c.bind({pid, port: 9299})
      expect(first).to.include({action: 'allow', port: 9299, repeat: false, newLease: true})
      // The caller's real bind found 9299 in use: the move wraps to the start of the range, below it.
      const moved = await c.bind({pid, port: 9299, taken: [9299]})
      expect(moved).to.include({action: 'remap', repeat: false, newLease: true})
      expect(moved.port).to.be.below(9299)
      const again = await c.bind({pid, port: 9299})
      expect(again).to.include({action: 'remap', port: moved.port, repeat: true, newLease: false})
      // A bind of the caller's own instance allocation: its port already, so not a new lease either.
      const lease = await c.allocate({service: 'test', pid, instanceId: 'run-newlease'})
      const own = await c.bind({pid, port: lease.port, instanceId: 'run-newlease'})
      expect(own).to.include({action: 'allow', port: lease.port, newLease: false})
      for (const id of [first.leaseId!, moved.leaseId!, lease.id]) await c.release(id)
    })

    it('POST /v1/bind refuses a pid that is not running', async () => {
      expect((await rejected(c.bind({pid: 4194000, port: 3000}))).code).to.equal('HOLDER_NOT_RUNNING')
    })

    it('instances: register by pid, heartbeat, list, remove (and its leases go)', async () => {
      const pid = holders[0].pid!
      const inst = await c.registerInstance({pid})
      expect(inst.id).to.equal(`ldpreload-${pid}`)
      const hb = await c.heartbeat(inst.id)
      expect(Date.parse(hb.lastHeartbeatAt)).to.be.at.least(Date.parse(inst.lastHeartbeatAt))
      expect((await c.instances()).map((i) => i.id)).to.include(inst.id)
      const lease = await c.allocate({service: 'proxy', instanceId: inst.id})
      await c.removeInstance(inst.id)
      expect((await c.leases()).map((l) => l.id)).to.not.include(lease.id)
      expect((await rejected(c.heartbeat(inst.id))).code).to.equal('NOT_FOUND')
    })

    it('POST /v1/cleanup releases what is stale now', async () => {
      const lease = await c.allocate({service: 'monitoring'})
      const r = await c.cleanup(true)
      expect(r.released.map((l) => l.id)).to.include(lease.id)
    })

    it('GET /v1/metrics speaks Prometheus text', async () => {
      const text = await c.metrics()
      expect(text).to.match(/^styxy_binds_total\{action="remapped"\} \d+$/m)
      expect(text).to.match(/^styxy_request_duration_seconds_count \d+$/m)
    })

    it(`GET /v1/events streams events caused by another client, in order`, async () => {
      const ws = c.events(via)
      await opened(ws)
      const seen: StyxyEvent[] = []
      ws.on('message', (m: Buffer) => seen.push(JSON.parse(m.toString())))
      const released = nextEvent(ws, (e) => e.type === 'lease.released')
      const lease = await d.client.allocate({service: 'ui'})
      await d.client.release(lease.id)
      await released
      ws.close()
      const types = seen.map((e) => e.type)
      expect(types).to.deep.equal(['lease.created', 'lease.released'])
      expect(seen[1].seq).to.equal(seen[0].seq + 1)
    })
  })
}
