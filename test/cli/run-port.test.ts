import {expect} from 'chai'
import {startDaemon, removeHome, runCli, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf} from '../helpers/processes.js'

describe('styxy run --port with the port taken', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon({env: {STYXY_REAP_INTERVAL_MS: '600000'}}) })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it("exports a port near it, in its own type's range, not one from the dev range", async () => {
    // A free port of the build range (8200-8299), then held by a listener outside Styxy.
    const held = await listenOn('127.0.0.1', (await d.client.suggest('build', 1)).ports[0])
    const asked = portOf(held)
    try {
      const r = await runCli(['run', '--port', String(asked), '--', 'sh', '-c', 'echo "PORT=$PORT"'], d.env)
      expect(r.code, r.stderr).to.equal(0)
      const port = Number(r.stdout.match(/PORT=(\d+)/)![1])
      expect(port).to.be.within(8200, 8299).and.not.equal(asked)
      // Near it: the first free port after it, as a moved bind gets.
      const free = (await d.client.suggest('build', 100)).ports.filter((p) => p > asked)
      expect(port).to.equal(free[0] ?? port)
    } finally {
      await closeServer(held)
    }
  })

  it('the lease it made carries the type of its port and the project it ran in', async () => {
    const held = await listenOn('127.0.0.1', (await d.client.suggest('build', 1)).ports[0])
    const asked = portOf(held)
    try {
      const ws = d.client.events()
      await new Promise((r) => ws.once('open', r))
      const created = new Promise<Record<string, unknown>>((resolve) => ws.on('message', (m: Buffer) => {
        const e = JSON.parse(m.toString())
        if (e.type === 'lease.created' && e.data.kind === 'allocation') resolve(e.data)
      }))
      const r = await runCli(['run', '--port', String(asked), '--', 'true'], d.env, undefined, d.home)
      expect(r.code, r.stderr).to.equal(0)
      expect(await created).to.include({service: 'build', requestedPort: asked, project: d.home})
      ws.close()
    } finally {
      await closeServer(held)
    }
  })
})
