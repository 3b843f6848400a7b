// Issue 17 item 7: with no daemon to ask, a program whose port another listener holds is moved by the library
// itself (interceptor/nearby.zig), and the daemon, once back, sees where it went.
import {expect} from 'chai'
import fs from 'node:fs'
import type net from 'node:net'
import {isolatedEnv, removeHome, startDaemon, tempHome} from '../helpers/daemon.js'
import {closeServer, freePort, listenOn, portOf} from '../helpers/processes.js'
import {httpGet, NOTICE_ALONE, startProgram, type Program} from '../helpers/programs.js'
import {nextEvent, opened} from '../helpers/events.js'

const NODE_SERVER = `
const http = require('node:http')
const s = http.createServer((q, r) => r.end('node ok'))
s.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening on ' + s.address().port))`

describe('interceptor: a taken port while the daemon is down', () => {
  const home = tempHome()
  // No daemon has ever run here, nothing listens on its TCP port, and the programs start under LD_PRELOAD
  // directly (not through `styxy run`, which would start one).
  let env: NodeJS.ProcessEnv
  let holder: net.Server
  let taken: number
  const programs: Program[] = []
  before(async () => {
    env = isolatedEnv(home, await freePort())
    holder = await listenOn('127.0.0.1', 0)
    taken = portOf(holder)
  })
  after(async () => {
    await Promise.all(programs.map((p) => p.stop()))
    await closeServer(holder)
    removeHome(home)
  })

  async function moved(cmd: string, args: string[], ready: RegExp, body: string): Promise<{port: number; program: Program}> {
    const program = startProgram(cmd, args, env)
    programs.push(program)
    const port = Number((await program.waitFor(ready))[1])
    expect(port, program.stderr()).to.be.above(taken).and.at.most(taken + 16)
    const notice = program.stderr().match(NOTICE_ALONE)
    expect(notice, program.stderr()).to.not.equal(null)
    expect([Number(notice![1]), Number(notice![2])]).to.deep.equal([taken, port])
    expect((await httpGet(port)).body).to.contain(body)
    return {port, program}
  }

  it('python3 -m http.server and a node server each end up listening on a nearby port, and say so', async () => {
    const py = await moved('python3', ['-u', '-m', 'http.server', String(taken), '--bind', '127.0.0.1', '--directory', home], /Serving HTTP on \S+ port (\d+)/, '<html')
    const node = await moved(process.execPath, ['-e', NODE_SERVER, String(taken)], /listening on (\d+)/, 'node ok')
    expect(node.port).to.not.equal(py.port)
    expect(fs.existsSync(`${home}/daemon.sock`), 'no daemon was started').to.equal(false)
  })

  it('the daemon, once back, leases the moved programs to their processes, and to nobody else', async () => {
    const [py, node] = programs
    const portOfNotice = (p: Program) => Number(p.stderr().match(NOTICE_ALONE)![2])
    // A server of the same user under the library but pointed at another state directory is not ours to lease.
    const otherHome = tempHome()
    const foreign = startProgram('python3', ['-u', '-m', 'http.server', String(taken), '--bind', '127.0.0.1', '--directory', home], isolatedEnv(otherHome, await freePort()))
    programs.push(foreign)
    const foreignPort = Number((await foreign.waitFor(/Serving HTTP on \S+ port (\d+)/))[1])
    const d = await startDaemon({home})
    try {
      const leases = await d.client.leases()
      for (const p of [py, node]) {
        expect(leases.find((l) => l.port === portOfNotice(p)), JSON.stringify(leases)).to.include({pid: p.child.pid, kind: 'bind'})
      }
      expect(leases.map((l) => l.port)).to.not.include(foreignPort)
      expect(leases.map((l) => l.port)).to.not.include(taken)
      const again = await d.client.bind({pid: process.pid, port: portOfNotice(py), command: 'another server'})
      expect(again.port).to.not.equal(portOfNotice(py))
      // Its lease ends with its process, as any lease does.
      const ws = d.client.events()
      await opened(ws)
      const gone = nextEvent(ws, (e) => e.type === 'lease.released' && e.data.port === portOfNotice(node))
      await node.stop()
      await gone
      ws.close()
    } finally {
      await d.stop()
      removeHome(otherHome)
    }
  })
})
