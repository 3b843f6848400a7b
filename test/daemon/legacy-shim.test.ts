import {expect} from 'chai'
import type net from 'node:net'
import {startDaemon, removeHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn} from '../helpers/processes.js'
import {legacyRequest} from '../helpers/legacy.js'

// The first Styxy's C shim, replayed over TCP with the token: its bind() found the port in use, so it asks
// who holds it, asks for suggestions, registers its process, and binds the first suggestion.
describe('legacy: the first Styxy shim\'s flow', function () {
  this.timeout(30_000)
  let d: TestDaemon
  const servers: net.Server[] = []

  before(async () => {
    d = await startDaemon()
  })
  after(async () => {
    for (const s of servers) await closeServer(s)
    await d?.stop()
    if (d) removeHome(d.home)
  })

  /** The first port of the storybook range (6006-6029) this test can hold: 6006 unless something else has it. */
  async function holdStorybookPort(): Promise<net.Server> {
    for (let port = 6006; port <= 6027; port++) {
      try {
        return await listenOn('127.0.0.1', port)
      } catch {
        // taken on this machine: the next
      }
    }
    throw new Error('no free port in 6006-6027')
  }

  it('observe says bound with the holder\'s pid, suggest skips bound and leased ports, register-instance answers ldpreload-<pid>, and the suggestion binds', async () => {
    const held = await holdStorybookPort()
    servers.push(held)
    const port = (held.address() as net.AddressInfo).port

    const observe = await legacyRequest(d, 'GET', `/observe/${port}`)
    expect(observe.status).to.equal(200)
    expect(observe.body).to.include({port, bound: true})
    expect(observe.body.observation).to.include.keys('pid', 'process', 'command', 'service_type', 'instance_id', 'timestamp', 'duration_ms')
    expect(observe.body.observation.pid).to.equal(process.pid)
    expect(observe.body.observation.service_type).to.equal('storybook')

    // A lease on the next port: a suggestion must not name it.
    const lease = await d.client.allocate({service: 'storybook', port: port + 1})
    const suggest = await legacyRequest(d, 'GET', '/suggest/storybook')
    expect(suggest.status).to.equal(200)
    expect(suggest.body).to.include.keys('service_type', 'suggestions', 'count', 'message')
    expect(suggest.body.service_type).to.equal('storybook')
    const suggestions: number[] = suggest.body.suggestions
    expect(suggestions).to.have.length.above(0)
    expect(suggest.body.count).to.equal(suggestions.length)
    for (const p of suggestions) {
      expect(p).to.be.within(6007, 6029)
      expect(p).to.not.equal(port)
      expect(p).to.not.equal(lease.port)
      const check = await legacyRequest(d, 'GET', `/check/${p}`)
      expect(check.body, `port ${p}`).to.include({available: true, allocated_to: null, system_usage: null})
    }

    const reg = await legacyRequest(d, 'POST', '/register-instance', {pid: process.pid, port: suggestions[0], service_type: 'storybook'})
    expect(reg.status).to.equal(200)
    expect(reg.body).to.deep.equal({success: true, instance_id: `ldpreload-${process.pid}`, message: 'Instance registered successfully'})
    expect((await d.client.instances()).map((i) => i.id)).to.include(`ldpreload-${process.pid}`)

    const bound = await listenOn('127.0.0.1', suggestions[0])
    servers.push(bound)
    const after = await legacyRequest(d, 'GET', `/observe/${suggestions[0]}`)
    expect(after.body).to.include({port: suggestions[0], bound: true})
  })
})
