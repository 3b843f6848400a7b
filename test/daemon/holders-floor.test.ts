import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import type {StyxyClient} from '../../src/client/client.js'

// Issue 17 item 5: a lease is only for a live process of the daemon's own user, and never below the floor.
async function refusal(p: Promise<unknown>): Promise<{code?: string; status?: number}> {
  try {
    await p
  } catch (error) {
    return error as {code?: string; status?: number}
  }
  throw new Error('expected a refusal')
}

for (const via of ['unix', 'tcp'] as const) {
  describe(`daemon: holders and ports that must never be leased (${via})`, () => {
    let d: TestDaemon
    let c: StyxyClient
    const holder = spawnHolder()
    before(async () => {
      d = await startDaemon()
      c = via === 'unix' ? d.client : d.tcp
    })
    after(async () => {
      await killAll([holder])
      await d.stop()
      removeHome(d.home)
    })

    it('a bind below the floor (80) is refused with PORT_OUT_OF_RANGE and leases nothing', async () => {
      const r = await refusal(c.bind({pid: holder.pid!, port: 80}))
      expect(r).to.include({code: 'PORT_OUT_OF_RANGE'})
      expect((await c.leases()).filter((l) => l.port === 80)).to.deep.equal([])
    })

    it("another user's process is refused as a holder, for binds, allocations and instances", async function () {
      // Running a process as another user needs root.
      if (process.getuid?.() !== 0) this.skip()
      const stranger = spawn('sleep', ['30'], {uid: 65534, gid: 65534, stdio: 'ignore'})
      await new Promise((resolve) => stranger.once('spawn', resolve))
      try {
        expect(await refusal(c.bind({pid: stranger.pid!, port: 9250}))).to.include({code: 'HOLDER_NOT_OURS'})
        expect(await refusal(c.allocate({service: 'test', pid: stranger.pid!}))).to.include({code: 'HOLDER_NOT_OURS'})
        expect(await refusal(c.registerInstance({pid: stranger.pid!}))).to.include({code: 'HOLDER_NOT_OURS'})
        expect((await c.leases()).filter((l) => l.pid === stranger.pid)).to.deep.equal([])
        // Our own holder still gets its lease.
        expect(await c.bind({pid: holder.pid!, port: 9251})).to.include({action: 'allow', port: 9251})
      } finally {
        await killAll([stranger])
      }
    })
  })
}
