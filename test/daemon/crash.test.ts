import {expect} from 'chai'
import type {Lease} from '../../src/protocol/types.js'
import {startDaemon, removeHome, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'

describe('daemon: kill -9 during a burst loses no answered lease', () => {
  const holders = Array.from({length: 24}, () => spawnHolder())
  const home = tempHome()
  after(async () => {
    await killAll(holders)
    removeHome(home)
  })

  it('three crashes mid-burst: every answered lease survives each restart, no port leased twice', async () => {
    const answered = new Map<string, number>()
    // Leases stay while their holders live; the grace period is long so nothing is reaped mid-test.
    const env = {STYXY_LISTEN_GRACE_MS: '600000'}
    for (let round = 0; round < 3; round++) {
      const d: TestDaemon = await startDaemon({home, env})
      let stop = false
      let sent = 0
      const killAfter = 40 + round * 25
      const burst = async (worker: number) => {
        while (!stop) {
          const h = holders[(sent++ + worker) % holders.length]
          try {
            const lease: Lease = sent % 2
              ? await d.client.allocate({service: 'dev', pid: h.pid})
              : await d.client.bind({pid: h.pid!, port: 3000 + (sent % 50), family: 'ipv4', address: '0.0.0.0'})
                .then((b) => ({id: b.leaseId!, port: b.port}) as Lease)
            if (lease.id) answered.set(lease.id, lease.port)
            if (answered.size >= killAfter * (round + 1) && !stop) {
              stop = true
              await d.kill9()
            }
          } catch {
            // In flight when the daemon died: never answered, so never promised.
          }
        }
      }
      await Promise.all([0, 1, 2, 3].map(burst))
      const again = await startDaemon({home, env})
      const leases = await again.client.leases()
      const byId = new Map(leases.map((l) => [l.id, l.port]))
      for (const [id, port] of answered) expect(byId.get(id), `lease ${id} on ${port}`).to.equal(port)
      expect(new Set(leases.map((l) => l.port)).size).to.equal(leases.length)
      await again.stop()
    }
    expect(answered.size).to.be.at.least(100)
  })
})
