import {expect} from 'chai'
import type {ChildProcess} from 'node:child_process'
import {startDaemon, removeHome, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, portOf, spawnHolder} from '../helpers/processes.js'
import {NOTICE_ALONE, probe} from '../helpers/programs.js'
import {report, scaled} from '../helpers/proof.js'

// Types whose ranges the allocations spread over (so that hundreds of rounds do not exhaust one range).
const SERVICES = ['dev', 'api', 'database', 'auth', 'functions', 'ui', 'hub', 'test', 'proxy', 'docs', 'monitoring', 'build', 'messaging']
const rand = (n: number) => Math.floor(Math.random() * n)

describe('faults: SIGKILL at random moments during a burst of binds, allocations and programs', () => {
  const holders: ChildProcess[] = Array.from({length: 32}, () => spawnHolder())
  const home = tempHome()
  after(async () => {
    await killAll(holders)
    removeHome(home)
  })

  it('after every restart each answered lease is there, no port is leased twice, every program came up', async function () {
    const rounds = scaled(5, 200)
    this.timeout(rounds * 15_000)
    // Leases stay while their holders live; the grace period is long so nothing is reaped mid-test.
    const env = {STYXY_LISTEN_GRACE_MS: '3600000'}
    const answered = new Map<string, number>() // lease id -> port, every lease a client was told about
    const portOwner = new Map<number, string>() // port -> the one answered lease id on it
    let checked = 0
    let inFlightLost = 0 // requests cut off by the kill: never answered, so never promised
    let programs = 0
    let failedOpen = 0
    let coordinated = 0
    let programFailures = 0
    let movedAlone = 0 // moved off the held port by the library itself, the daemon being unreachable
    const failures: string[] = []
    // A port another listener holds all along: programs asking for it are moved by the daemon while it is up,
    // and by the library alone while it is not (before, they failed with EADDRINUSE).
    const held = await listenOn('127.0.0.1', 0)
    const promise = (id: string | null | undefined, port: number) => {
      if (!id) return
      const owner = portOwner.get(port)
      expect(owner === undefined || owner === id, `port ${port} answered to two leases: ${owner} and ${id}`).to.equal(true)
      portOwner.set(port, id)
      answered.set(id, port)
    }
    // A refusal can come back without any I/O (no TCP listener of ours: checked in /proc): yield, or the loop starves the rest.
    const missed = () => { inFlightLost++; return new Promise((r) => setImmediate(r)) }
    let d: TestDaemon = await startDaemon({home, env})
    for (let round = 0; round < rounds; round++) {
      let stop = false
      const binds = async () => {
        while (!stop) {
          const h = holders[rand(holders.length)]
          // Mostly ports outside every range (allowed), some in the dev range (remapped while it lasts).
          const port = rand(4) ? 20000 + rand(10000) : 3000 + rand(100)
          try {
            const b = await d.client.bind({pid: h.pid!, port, command: 'node server.js'})
            promise(b.leaseId, b.port)
          } catch { await missed() }
        }
      }
      const allocations = async () => {
        while (!stop) {
          try {
            const a = await d.tcp.allocate({service: SERVICES[rand(SERVICES.length)], pid: holders[rand(holders.length)].pid})
            promise(a.id, a.port)
          } catch { await missed() }
        }
      }
      // Real programs under the real library, started throughout, including across the kill and the restart.
      const launches: Promise<void>[] = []
      const launcher = async () => {
        while (!stop) {
          // A third ask for the held port. Of the rest, half ask for a port already leased to someone else (no
          // listener there): moved while the daemon is up, their own while it is not.
          const leased = [...answered.values()]
          const port = rand(3) === 0 ? portOf(held) : rand(2) && leased.length ? leased[rand(leased.length)] : 30000 + rand(2000)
          programs++
          launches.push(probe(['--family', '4', String(port)], d.env).then((r) => {
            const b = r.bound[0]
            if (r.code !== 0 || !b || b.error !== '0' || b.actual === 0) {
              programFailures++
              failures.push(`port ${port}: exit ${r.code}, ${JSON.stringify(r.bound)} ${r.stderr.trim().slice(0, 300)}`)
            }
            else if (b.actual === port) failedOpen++
            else if (NOTICE_ALONE.test(r.stderr)) movedAlone++
            else coordinated++
          }))
          await new Promise((r) => setTimeout(r, 20 + rand(60)))
        }
      }
      const work = [binds(), binds(), allocations(), allocations(), launcher()]
      await new Promise((r) => setTimeout(r, 50 + rand(400)))
      await d.kill9()
      // Programs keep starting while the daemon is dead and while it comes back.
      d = await startDaemon({home, env})
      stop = true
      await Promise.all(work)
      await Promise.all(launches)
      const leases = await d.client.leases()
      const byId = new Map(leases.map((l) => [l.id, l.port]))
      for (const [id, port] of answered) {
        expect(byId.get(id), `round ${round}: lease ${id} on ${port}`).to.equal(port)
        checked++
      }
      expect(new Set(leases.map((l) => l.port)).size).to.equal(leases.length)
    }
    await d.stop()
    await closeServer(held)
    report('kill9', {kills: rounds, leasesAnswered: answered.size, leaseChecks: checked, lost: 0, doubleLeased: 0, inFlightLost, programs, programFailures, failedOpen, coordinated, movedAlone})
    expect(programFailures, failures.join('\n')).to.equal(0)
    expect(answered.size).to.be.at.least(rounds * 10)
    expect(programs).to.be.at.least(rounds)
  })
})
