import {expect} from 'chai'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'

describe('daemon: concurrent binds', () => {
  let d: TestDaemon
  const holders = Array.from({length: 200}, () => spawnHolder())

  before(async () => { d = await startDaemon() })
  after(async () => {
    await killAll(holders)
    await d.stop()
    removeHome(d.home)
  })

  it('200 concurrent bind requests for one port from 200 live pids end on 200 distinct ports', async () => {
    const answers = await Promise.all(holders.map((h, i) =>
      (i % 2 ? d.client : d.tcp).bind({pid: h.pid!, port: 3000, family: i % 3 ? 'ipv4' : 'ipv6', address: '0.0.0.0', command: 'npm run dev'})))
    const ports = answers.map((a) => a.port)
    expect(new Set(ports).size).to.equal(200)
    expect(answers.filter((a) => a.action === 'allow')).to.have.length(1)
    expect(answers.filter((a) => a.action === 'remap')).to.have.length(199)
    // The dev range holds 100 ports; the rest landed above it, outside every other type's range.
    for (const p of ports) expect(p === 3000 || p > 3000).to.equal(true)
    const leases = await d.client.leases()
    expect(new Set(leases.map((l) => l.port)).size).to.equal(leases.length)
    expect(leases).to.have.length(200)
  })
})
