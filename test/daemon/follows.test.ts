import {expect} from 'chai'
import type {StyxyEvent} from '../../src/protocol/events.js'
import {removeHome, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {nextEvent, opened} from '../helpers/events.js'
import {killAll, spawnHolder} from '../helpers/processes.js'

describe('POST /v1/follows: one connect.followed event per process and port', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon() })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  it('publishes the first report of a process and port, not its repeats; another port or process is another event', async () => {
    const ws = d.client.events()
    const seen: StyxyEvent[] = []
    ws.on('message', (data: Buffer) => seen.push(JSON.parse(data.toString()) as StyxyEvent))
    await opened(ws)
    const [one, two] = [spawnHolder(), spawnHolder()]
    try {
      await Promise.all([one, two].map((h) => new Promise((r) => h.once('spawn', r))))
      expect(await d.client.reportFollow({pid: one.pid!, port: 8000, to: 8002, project: '/tmp/wt-b/'})).to.deep.equal({published: true})
      expect(await d.client.reportFollow({pid: one.pid!, port: 8000, to: 8002, project: '/tmp/wt-b'})).to.deep.equal({published: false})
      expect(await d.client.reportFollow({pid: one.pid!, port: 5432, to: 5433})).to.deep.equal({published: true})
      expect(await d.client.reportFollow({pid: two.pid!, port: 8000, to: 8002})).to.deep.equal({published: true})
      // The marker: an event after the reports has come, so every event of theirs has too.
      await d.client.registerInstance({id: 'marker'})
      while (!seen.some((e) => e.type === 'instance.registered')) await new Promise((r) => ws.once('message', r))
      const follows = seen.filter((e) => e.type === 'connect.followed').map((e) => e.data)
      expect(follows.map((f) => [f.pid, f.from, f.to])).to.deep.equal([[one.pid, 8000, 8002], [one.pid, 5432, 5433], [two.pid, 8000, 8002]])
      expect(follows[0]).to.include({project: '/tmp/wt-b', requestedPort: 8000, port: 8002, command: 'sh -c read _'})
      // No project told: the process's own (its working directory's worktree).
      expect(follows[1].project).to.be.a('string')
    } finally {
      ws.close()
      await killAll([one, two])
    }
  })

  it('publishes the report of a process that has exited since (told without waiting), without its command; refuses a body that does not validate', async () => {
    const gone = spawnHolder()
    await new Promise((r) => gone.once('spawn', r))
    const pid = gone.pid!
    await killAll([gone])
    const ws = d.client.events()
    await opened(ws)
    try {
      const event = nextEvent(ws, (e) => e.type === 'connect.followed' && e.data.pid === pid)
      expect(await d.client.reportFollow({pid, port: 8000, to: 8002, project: '/tmp/wt-b'})).to.deep.equal({published: true})
      expect((await event).data).to.include({from: 8000, to: 8002, project: '/tmp/wt-b', command: null})
    } finally {
      ws.close()
    }
    const raw = await d.client.raw('POST', '/v1/follows', {pid: process.pid, port: 8000})
    expect(raw.status).to.equal(422)
    expect(JSON.parse(raw.body).error.code).to.equal('VALIDATION_FAILED')
  })
})
