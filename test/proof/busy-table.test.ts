import {expect} from 'chai'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, spawnHolder} from '../helpers/processes.js'
import {keepTimeWait, socketsInState} from '../helpers/busy-table.js'
import {report, scaled} from '../helpers/proof.js'

// Issue "ask the kernel exactly": on a host whose TCP table holds tens of thousands of sockets, a decision must
// cost what the listeners it needs cost, not what the table holds. The daemon counts the sockets the kernel
// described to it (status.kernel.examined); that count, not a clock, is what is asserted.

describe('a busy host: 20,000 TIME_WAIT sockets in the table', function () {
  this.timeout(180_000)
  let d: TestDaemon
  let proc: TestDaemon
  const holder = spawnHolder()

  before(async () => {
    // No reaper rounds (they ask the kernel too) between the counts.
    const quiet = {STYXY_REAP_INTERVAL_MS: '600000'}
    ;[d, proc] = await Promise.all([startDaemon({env: quiet}), startDaemon({env: {...quiet, STYXY_KERNEL: 'proc'}})])
    await keepTimeWait(scaled(20_000, 25_000))
  })
  after(async () => {
    await killAll([holder])
    await Promise.all([d.stop(), proc.stop()])
    removeHome(d.home)
    removeHome(proc.home)
  })

  it('each decision examines only the listeners it needs (sock_diag), where /proc examines every socket', async () => {
    // Counted again here: the daemons' start and the fill took time, in which the oldest may have expired.
    const tw = await keepTimeWait(scaled(20_000, 25_000))
    expect(tw, 'TIME_WAIT sockets in the table').to.be.at.least(20_000)
    const examined = async (daemon: TestDaemon, ask: () => Promise<unknown>) => {
      const before = (await daemon.client.status()).kernel.examined
      await ask()
      // The status call itself asks nothing of the kernel.
      return (await daemon.client.status()).kernel.examined - before
    }
    const [free, taken] = (await d.client.suggest('test', 2)).ports
    const server = await listenOn('127.0.0.1', taken)
    try {
      const status = await d.client.status()
      expect(status.kernel).to.include({sockets: 'sock_diag', exits: 'pidfd'})
      const bind = (daemon: TestDaemon, port: number) => () => daemon.client.bind({pid: holder.pid!, port})
      const freeBind = await examined(d, bind(d, free))
      const movedBind = await examined(d, bind(d, taken))
      const listeners = socketsInState('0A')
      // A free port: the kernel describes the sockets on that one port, in both families (none here).
      expect(freeBind, 'sockets examined for a bind of a free port').to.be.at.most(2)
      // A move: the listeners once (to walk the candidates), then the one port it settles on.
      expect(movedBind, 'sockets examined for a bind that is moved').to.be.at.most(listeners + 10)
      expect(movedBind).to.be.below(tw / 10)
      const procBind = await examined(proc, bind(proc, free + 1))
      // Every line, give or take the TIME_WAIT sockets that expired since they were counted (they last a minute).
      expect(procBind, 'the /proc fallback reads every line').to.be.at.least(tw * 0.9)
      expect((await proc.client.status()).kernel).to.include({sockets: 'proc', exits: 'poll', reason: 'STYXY_KERNEL=proc'})
      report('busy-table', {timeWait: tw, listeners, examined: {sockDiagFreeBind: freeBind, sockDiagMovedBind: movedBind, procFreeBind: procBind}})
    } finally {
      await closeServer(server)
    }
  })
})
