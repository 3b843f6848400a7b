import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {Coordinator} from '../../src/daemon/coordinator.js'
import {EventHub} from '../../src/daemon/hub.js'
import {SocketTable} from '../../src/daemon/socket-table.js'
import {mergeServiceTypes} from '../../src/core/service-types.js'
import {Store} from '../../src/store/store.js'
import {removeHome, tempHome} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'

function coordinatorIn(home: string): {c: Coordinator; store: Store} {
  const store = new Store(path.join(home, 'styxy.db'))
  const c = new Coordinator(store, mergeServiceTypes(undefined), new EventHub(), new SocketTable(60_000), path.join(home, 'audit.log'),
    {daemonPort: 9876, minPort: 1024, listenGraceMs: 600_000, instanceTtlMs: 60_000})
  return {c, store}
}

const startOf = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
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
        const first = await c.bind({pid, port, family: 'ipv4', address: '0.0.0.0'})
        const moved = await c.bind({pid, port, family: 'ipv4', address: '0.0.0.0', taken: [port]})
        const again = await c.bind({pid, port, family: 'ipv6', address: '::'})
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
      await c.bind({pid: process.pid, port: 19999, family: 'ipv4', address: '127.0.0.1'}) // the table's one read
      // Only a newcomer started within the holder's own 10 ms tick shows the case: try until one is.
      for (let attempt = 0; attempt < 60; attempt++) {
        const port = 20000 + attempt
        const holder = spawnHolder()
        await new Promise((r) => holder.once('spawn', r))
        const first = await c.bind({pid: holder.pid!, port, family: 'ipv4', address: '127.0.0.1'})
        const start = startOf(holder.pid!)
        await killAll([holder])
        fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(holder.pid! - 1))
        const heir = spawnHolder()
        await new Promise((r) => heir.once('spawn', r))
        try {
          if (heir.pid !== holder.pid || startOf(heir.pid!) !== start) continue
          const again = await c.bind({pid: heir.pid!, port, family: 'ipv4', address: '127.0.0.1'})
          expect(again).to.include({action: 'allow', port, repeat: false, newLease: true})
          expect(again.leaseId).to.not.equal(first.leaseId)
          expect(store.leaseById(first.leaseId!)).to.equal(undefined)
          return
        } finally {
          await killAll([heir])
        }
      }
      this.skip() // no recycle landed within the tick in 60 tries (a busy machine)
    } finally {
      store.close()
      removeHome(home)
    }
  })
})
