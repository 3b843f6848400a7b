import {expect} from 'chai'
import {removeHome, runCli, startDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf} from '../helpers/processes.js'
import {report, within} from '../helpers/proof.js'
import type {Status} from '../../src/protocol/types.js'

// Issue 17, item 3: another user's listener on the daemon's TCP port (the default 9876 is everyone's) once
// made `daemon start` fail with EADDRINUSE although the Unix socket, the main transport, was free.
describe('proof: the TCP port taken by someone else', () => {
  it('the daemon serves on its socket, says TCP is off and why, and takes the port once it is free', async () => {
    // A plain listener stands in for the other user's: the same EADDRINUSE.
    const squatter = await listenOn('127.0.0.1')
    const port = portOf(squatter)
    let squatting = true
    // Retries at most every 200 ms instead of 30 s, so the port's return is seen within the test.
    const d = await startDaemon({port, env: {STYXY_TCP_RETRY_MAX_MS: '200'}})
    try {
      expect((await d.client.health()).pid).to.equal(d.pid)
      const off = await d.client.status()
      expect(off.tcp).to.include({host: '127.0.0.1', port, listening: false})
      expect(off.tcp.error).to.match(/^EADDRINUSE/)

      const status = await runCli(['status'], d.env)
      expect(status.code, status.stderr).to.equal(0)
      expect(status.stdout).to.match(new RegExp(`tcp +off: 127\\.0\\.0\\.1:${port} EADDRINUSE`))
      const doctor = JSON.parse((await runCli(['doctor', '--json'], d.env)).stdout) as {checks: {name: string; level: string; detail: string}[]}
      const tcpCheck = doctor.checks.find((c) => c.name === 'daemon (TCP + token)')!
      expect(tcpCheck.level).to.equal('warn')
      expect(tcpCheck.detail).to.contain(`off: 127.0.0.1:${port} EADDRINUSE`)
      expect(d.output()).to.contain(`TCP 127.0.0.1:${port} is unavailable (EADDRINUSE`)

      await closeServer(squatter)
      squatting = false
      const freedAt = Date.now()
      // The signal is the daemon's own word: its status, asked through the client, until TCP is on.
      await within(5000, async () => (await d.client.status()).tcp.listening, 'TCP listening after the port was freed')
      const tookMs = Date.now() - freedAt
      const on: Status = await d.client.status()
      expect(on.tcp).to.deep.equal({host: '127.0.0.1', port, listening: true, error: null, retryMs: null})
      expect((await d.tcp.health()).pid).to.equal(d.pid)
      report('tcp-taken', {port, tcpBackAfterMs: tookMs})
    } finally {
      if (squatting) await closeServer(squatter)
      await d.stop()
      removeHome(d.home)
    }
  })
})
