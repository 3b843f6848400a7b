import {expect} from 'chai'
import path from 'node:path'
import type {BindResponse} from '../../src/protocol/types.js'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {killAll, spawnHolder} from '../helpers/processes.js'
import {interceptorRequest, rawExchange, statusOf} from '../helpers/proof.js'

describe('daemon: concurrent binds', () => {
  let d: TestDaemon
  const holders = Array.from({length: 200}, () => spawnHolder())

  before(async () => { d = await startDaemon() })
  after(async () => {
    await killAll(holders)
    await d.stop()
    removeHome(d.home)
  })

  it('200 concurrent bind requests for one port from 200 live pids end on 200 distinct ports (as the interceptor asks, the client on the socket, TCP)', async () => {
    // A third each as the interceptor asks (its exact bytes on the Unix socket), the client on the socket, and TCP.
    const unix = {path: path.join(d.home, 'daemon.sock')}
    const answers = await Promise.all(holders.map(async (h, i): Promise<BindResponse> => {
      const req = {pid: h.pid!, port: 3000, command: 'npm run dev'} as const
      if (i % 3 === 1) return d.client.bind(req)
      if (i % 3 === 2) return d.tcp.bind(req)
      const answer = await rawExchange(unix, interceptorRequest(JSON.stringify(req)), 10_000, 5000)
      expect(statusOf(answer), answer).to.equal(200)
      return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as BindResponse
    }))
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
