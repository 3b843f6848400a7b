import {expect} from 'chai'
import path from 'node:path'
import {removeHome, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, freePort, listenOn} from '../helpers/processes.js'
import {fetchText, makeWorktree, startBackend, type Worktree} from '../helpers/worktrees.js'

/**
 * Issue 19's sticky proof: a real server (python3 -m http.server under the real library) restarted 10 times in
 * worktree B, while worktree A holds the port it asks for, gets the same moved port every time, including
 * across a restart of the daemon. Started from different directories of B each time: the memory is B's (its
 * worktree's top), not a directory's. The port next to the asked one is held by a stranger during B's first
 * start only: afterwards it is the first free port, so only B's memory gives B its first port again.
 */
describe('sticky ports per worktree (real servers under the library)', () => {
  let d: TestDaemon
  let a: Worktree
  let b: Worktree

  before(async () => {
    d = await startDaemon()
    a = makeWorktree('A')
    b = makeWorktree('B')
  })
  after(async () => {
    await d.stop()
    removeHome(d.home)
    for (const t of [a, b]) removeHome(t.dir)
  })

  it('B restarted 10 times (once across a daemon restart) gets the same moved port; A keeps the asked port', async function () {
    this.timeout(120_000)
    let asked = 0
    let stranger
    while (!stranger) {
      asked = await freePort()
      stranger = await listenOn('127.0.0.1', asked + 1).catch(() => undefined)
    }
    const holderA = await startBackend(a, asked, d.env)
    try {
      expect(holderA.port).to.equal(asked)
      const dirs = [b.dir, b.backend, path.join(b.backend, 'src')]
      const ports: number[] = []
      for (let round = 0; round < 10; round++) {
        if (round === 5) {
          await d.stop()
          d = await startDaemon({home: d.home})
        }
        const server = await startBackend(b, asked, d.env, dirs[round % dirs.length])
        try {
          ports.push(server.port)
          expect(await fetchText(server.port, '/whoami'), `round ${round}`).to.equal(b.marker)
          expect(server.program.stderr()).to.contain(`Port ${asked} was in use, auto-assigned port ${server.port}`)
        } finally {
          await server.program.stop()
          if (round === 0) await closeServer(stranger)
        }
      }
      expect(ports[0], "past the stranger").to.be.above(asked + 1)
      expect(ports, `asked ${asked}`).to.deep.equal(Array(10).fill(ports[0]))
      expect(await fetchText(asked, '/whoami')).to.equal(a.marker)
      console.log(`      A on ${asked}; B moved to ${ports[0]} in all 10 starts (daemon restarted before the 6th)`)
    } finally {
      await holderA.program.stop()
    }
  })
})
