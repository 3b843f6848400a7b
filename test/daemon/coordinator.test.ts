import {expect} from 'chai'
import path from 'node:path'
import {Coordinator} from '../../src/daemon/coordinator.js'
import {EventHub} from '../../src/daemon/hub.js'
import {SocketTable} from '../../src/daemon/socket-table.js'
import {mergeServiceTypes} from '../../src/core/service-types.js'
import {Store} from '../../src/store/store.js'
import {removeHome, tempHome} from '../helpers/daemon.js'
import {closeServer, listenOn, recycleWithinTick} from '../helpers/processes.js'

function coordinatorIn(home: string): {c: Coordinator; store: Store} {
  const store = new Store(path.join(home, 'styxy.db'))
  const c = new Coordinator(store, mergeServiceTypes(undefined), new EventHub(), new SocketTable(60_000), path.join(home, 'audit.log'),
    {daemonPort: 9876, minPort: 1024, listenGraceMs: 600_000, instanceTtlMs: 60_000})
  return {c, store}
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
        const first = await c.bind({pid, port})
        const moved = await c.bind({pid, port, taken: [port]})
        const again = await c.bind({pid, port})
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
      await c.bind({pid: process.pid, port: 19999}) // the table's one read
      let port = 20000
      const landed = await recycleWithinTick(
        (pid) => c.bind({pid, port: ++port}),
        async (pid, first) => {
          const again = await c.bind({pid, port: first.port})
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

describe('coordinator: how old a view of the kernel’s tables each decision may use', () => {
  it('binds use the snapshot they are given; an allocation wants one at most 250 ms old', async () => {
    const home = tempHome()
    const {c, store} = coordinatorIn(home) // binds may use a snapshot up to a minute old here
    try {
      const [forBind, forAllocation] = (await c.suggest('test', 2)).ports // the table's read
      const servers = await Promise.all([listenOn('127.0.0.1', forBind), listenOn('127.0.0.1', forAllocation)])
      try {
        // Nothing signals a snapshot's age: wait until the read above is older than an allocation accepts.
        await new Promise((resolve) => setTimeout(resolve, 400))
        // Unseen by the bind (the interceptor's EADDRINUSE retry is what catches it), seen by the allocation.
        expect(await c.bind({pid: process.pid, port: forBind})).to.include({action: 'allow', port: forBind})
        expect((await c.allocate({service: 'test', port: forAllocation})).port).to.not.equal(forAllocation)
      } finally {
        await Promise.all(servers.map(closeServer))
      }
    } finally {
      store.close()
      removeHome(home)
    }
  })

  it('an allocation after a release reads the tables again: that program may still listen there', async () => {
    const home = tempHome()
    const {c, store} = coordinatorIn(home)
    try {
      const [port] = (await c.suggest('test', 1)).ports // a read, fresh enough for an allocation for 250 ms
      const answer = await c.bind({pid: process.pid, port})
      expect(answer).to.include({action: 'allow', port})
      await c.portInfo(port) // another read, after the bind was answered but before its program listens
      const server = await listenOn('127.0.0.1', port)
      try {
        c.release(answer.leaseId!) // its run ended (an exit watch), the server lives on
        expect((await c.allocate({service: 'test', port})).port).to.not.equal(port)
      } finally {
        await closeServer(server)
      }
    } finally {
      store.close()
      removeHome(home)
    }
  })
})
