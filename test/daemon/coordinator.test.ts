import {expect} from 'chai'
import path from 'node:path'
import {Coordinator} from '../../src/daemon/coordinator.js'
import {EventHub} from '../../src/daemon/hub.js'
import {openKernel} from '../../src/kernel/open.js'
import type {KernelTables} from '../../src/kernel/tables.js'
import {mergeServiceTypes} from '../../src/core/service-types.js'
import {Store} from '../../src/store/store.js'
import {removeHome, tempHome} from '../helpers/daemon.js'
import {closeServer, listenOn, recycleWithinTick} from '../helpers/processes.js'

function coordinatorIn(home: string, env: NodeJS.ProcessEnv = {}): {c: Coordinator; store: Store; kernel: KernelTables} {
  const store = new Store(path.join(home, 'styxy.db'))
  const kernel = openKernel(env, () => {}).tables
  const c = new Coordinator(store, mergeServiceTypes(undefined), new EventHub(), kernel, path.join(home, 'audit.log'),
    {daemonPort: 9876, minPort: 1024, listenGraceMs: 600_000, instanceTtlMs: 60_000})
  return {c, store, kernel}
}

// The coordinator in process, on a real store: fast enough that decisions share a millisecond, which over
// HTTP they seldom do.
describe('coordinator: decisions within one millisecond', () => {
  it('after a retry that moved below the asked port, the latest answer is the one repeated', async () => {
    const home = tempHome()
    const {c, store} = coordinatorIn(home)
    try {
      const pid = process.pid
      // The last ports of the test range: each move wraps to the range's start, below the asked port.
      for (let port = 9299; port > 9279; port--) {
        const first = c.bind({pid, port})
        const moved = c.bind({pid, port, taken: [port]})
        const again = c.bind({pid, port})
        expect(first).to.include({action: 'allow', port})
        expect(moved.port).to.be.below(port)
        expect(again, `asked ${port}`).to.include({port: moved.port, repeat: true})
      }
    } finally {
      store.close()
      removeHome(home)
    }
  })

  it('a pid recycled within one clock tick: the newcomer asking for the dead holder’s port gets a lease of its own', async function () {
    // Recycling a pid on purpose needs root (kernel.ns_last_pid).
    if (process.getuid?.() !== 0) this.skip()
    const home = tempHome()
    const {c, store} = coordinatorIn(home)
    try {
      let port = 20000
      const landed = await recycleWithinTick(
        async (pid) => c.bind({pid, port: ++port}),
        async (pid, first) => {
          const again = c.bind({pid, port: first.port})
          expect(again).to.include({action: 'allow', port: first.port, repeat: false, newLease: true})
          expect(again.leaseId).to.not.equal(first.leaseId)
          expect(store.leaseById(first.leaseId!)).to.equal(undefined)
        })
      if (!landed) this.skip() // no recycle landed within the tick (a busy machine)
    } finally {
      store.close()
      removeHome(home)
    }
  })
})

for (const [label, env] of [['sock_diag', {}], ['/proc, the fallback', {STYXY_KERNEL: 'proc'}]] as const) {
  describe(`coordinator: each decision asks the kernel at that moment (${label})`, () => {
    it('a listener that started just before a bind, an allocation or a question is seen by each, in either family', async () => {
      const home = tempHome()
      const {c, store, kernel} = coordinatorIn(home, env)
      try {
        expect(kernel.name).to.equal(label === 'sock_diag' ? 'sock_diag' : 'proc')
        const [v4, v6, alloc] = c.suggest('test', 3).ports
        const servers = await Promise.all([listenOn('127.0.0.1', v4), listenOn('::1', v6).catch(() => null), listenOn('127.0.0.1', alloc)])
        try {
          expect(c.bind({pid: process.pid, port: v4})).to.include({action: 'remap'})
          if (servers[1]) expect(c.bind({pid: process.pid, port: v6})).to.include({action: 'remap'})
          expect(c.allocate({service: 'test', port: alloc}).port).to.not.equal(alloc)
          expect(c.portInfo(v4)).to.include({bound: true})
        } finally {
          await Promise.all(servers.map((s) => s && closeServer(s)))
        }
        // Closed just now: free at once, no snapshot to outlive.
        expect(c.portInfo(v4)).to.include({bound: false})
        expect(c.bind({pid: process.pid, port: alloc + 1})).to.include({action: 'allow'})
      } finally {
        store.close()
        removeHome(home)
      }
    })

    it('a lease released while its program still listens: the next allocation sees the listener', async () => {
      const home = tempHome()
      const {c, store} = coordinatorIn(home, env)
      try {
        const [port] = c.suggest('test', 1).ports
        const answer = c.bind({pid: process.pid, port})
        expect(answer).to.include({action: 'allow', port})
        const server = await listenOn('127.0.0.1', port)
        try {
          c.releases.release(answer.leaseId!) // its run ended (an exit watch), the server lives on
          expect(c.allocate({service: 'test', port}).port).to.not.equal(port)
        } finally {
          await closeServer(server)
        }
      } finally {
        store.close()
        removeHome(home)
      }
    })
  })
}
