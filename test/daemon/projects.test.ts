import {expect} from 'chai'
import type {ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {Coordinator} from '../../src/daemon/coordinator.js'
import {EventHub} from '../../src/daemon/hub.js'
import {openKernel} from '../../src/kernel/open.js'
import {mergeServiceTypes} from '../../src/core/service-types.js'
import {Store} from '../../src/store/store.js'
import {removeHome, tempHome} from '../helpers/daemon.js'
import {killAll, startHolder} from '../helpers/processes.js'

// Projects and sticky ports, decided by the coordinator in process on a real store. No exit watcher and no
// reaper run here: a killed holder's lease stays until a decision finds it dead, as it does in a daemon
// between a restarted server's exit and the event that reports it.

/** A type of its own, below the ephemeral range (outgoing connections take ports there), where no other test asks. */
const BASE = 23000 + 100 * Math.floor(Math.random() * 60)
const types = mergeServiceTypes({web: {range: [BASE, BASE + 99]}})

function worktree(home: string, name: string): string {
  const dir = path.join(home, name)
  fs.mkdirSync(path.join(dir, '.git'), {recursive: true})
  fs.mkdirSync(path.join(dir, 'server', 'src'), {recursive: true})
  return dir
}

describe('projects and sticky ports (coordinator)', () => {
  let home: string
  let store: Store
  let c: Coordinator
  let a: string
  let b: string
  const holders: ChildProcess[] = []
  const holder = () => startHolder(holders)
  const open = () => {
    store = new Store(path.join(home, 'styxy.db'))
    c = new Coordinator(store, types, new EventHub(), openKernel({}, () => {}).tables, path.join(home, 'audit.log'),
      {daemonPort: 9876, minPort: 1024, listenGraceMs: 600_000, instanceTtlMs: 60_000})
  }

  beforeEach(() => {
    home = fs.realpathSync(tempHome())
    a = worktree(home, 'wt-a')
    b = worktree(home, 'wt-b')
    open()
  })
  afterEach(async () => {
    await killAll(holders.splice(0))
    store.close()
    removeHome(home)
  })

  it("a bind's project is its worktree's top, or the project it names (relative to its cwd); a lease and the move record it", async () => {
    const P = BASE + 10
    const inA = c.bind({pid: await holder(), port: P, cwd: path.join(a, 'server', 'src')})
    expect(store.leaseById(inA.leaseId!)!.project).to.equal(a)
    const named = c.bind({pid: await holder(), port: P, cwd: path.join(b, 'server'), project: '../elsewhere'})
    expect(named.action).to.equal('remap')
    expect(store.leaseById(named.leaseId!)!.project).to.equal(path.join(b, 'elsewhere'))
    expect(store.reassignments().at(-1)).to.include({from: P, to: named.port, project: path.join(b, 'elsewhere')})
    // Outside any worktree: the directory itself.
    const bare = c.bind({pid: await holder(), port: BASE + 30, cwd: home})
    expect(store.leaseById(bare.leaseId!)!.project).to.equal(home)
  })

  it('a worktree gets its moved port again from any of its directories (keyed by project, not cwd), across a restart of the daemon', async () => {
    const P = BASE + 10
    c.bind({pid: await holder(), port: P, cwd: a})
    // Someone else holds P+1 at first: B's first move goes past it.
    const other = c.bind({pid: await holder(), port: P + 1, cwd: home})
    const first = c.bind({pid: await holder(), port: P, cwd: path.join(b, 'server')})
    expect(first).to.include({action: 'remap', port: P + 2})
    c.releases.release(other.leaseId!)
    c.releases.release(first.leaseId!)
    // P+1 is the first free port now: only the memory of B's move gives P+2 again, asked from another directory.
    const again = c.bind({pid: await holder(), port: P, cwd: path.join(b, 'server', 'src')})
    expect(again).to.include({action: 'remap', port: P + 2})
    c.releases.release(again.leaseId!)
    store.close()
    open()
    const afterRestart = c.bind({pid: await holder(), port: P, cwd: b})
    expect(afterRestart).to.include({action: 'remap', port: P + 2})
  })

  it("a restarted server whose predecessor's exit is not known yet gets the predecessor's moved port", async () => {
    const P = BASE + 40
    c.bind({pid: await holder(), port: P, cwd: a})
    const pid = await holder()
    const first = c.bind({pid, port: P, cwd: b})
    expect(first).to.include({action: 'remap', port: P + 1})
    await killAll(holders.filter((h) => h.pid === pid))
    // Its lease is still there (no exit watcher here): found dead by this decision, not a reason to move on.
    expect(store.leaseByPort(P + 1)).to.not.equal(undefined)
    const next = c.bind({pid: await holder(), port: P, cwd: b})
    expect(next).to.include({action: 'remap', port: P + 1})
  })

  it('a second live copy moved further does not take the port away from the first one’s next restart; a free asked port is taken', async () => {
    const P = BASE + 60
    const holdA = c.bind({pid: await holder(), port: P, cwd: a})
    const one = c.bind({pid: await holder(), port: P, cwd: b})
    const two = c.bind({pid: await holder(), port: P, cwd: b})
    expect([one.port, two.port]).to.deep.equal([P + 1, P + 2])
    c.releases.release(two.leaseId!)
    c.releases.release(one.leaseId!)
    // Both are free again: B's port is still the first copy's.
    const next = c.bind({pid: await holder(), port: P, cwd: b})
    expect(next).to.include({port: P + 1})
    // A is gone: P is free and nobody else holds it, so B takes P.
    c.releases.release(holdA.leaseId!)
    expect(c.bind({pid: await holder(), port: P, cwd: b})).to.include({action: 'allow', port: P})
  })

  it('an allocation asked for a taken port gets its project’s earlier port again; its project defaults to its holder’s worktree', async () => {
    const P = BASE + 80
    c.bind({pid: await holder(), port: P, cwd: a})
    // P is taken and so are its next ports: the allocation lands past them (issue 21: near the asked port).
    const busy = [1, 2, 3].map((i) => c.allocate({service: 'web', port: P + i}))
    const first = c.allocate({service: 'web', port: P, project: b})
    expect(first.port).to.equal(P + 4)
    for (const l of [...busy, first]) c.releases.release(l.id)
    // P + 1 is free now; B's earlier port comes before it.
    const again = c.allocate({service: 'web', port: P, project: b + '/'})
    expect(again).to.include({port: P + 4, project: b})
    // No project given: the holder's working directory says (this test process runs in the repository).
    const pid = await holder()
    expect(c.allocate({service: 'web', pid}).project).to.equal(projectOfThisRepo())
  })
})

function projectOfThisRepo(): string {
  let d = process.cwd()
  while (!fs.existsSync(path.join(d, '.git')) && path.dirname(d) !== d) d = path.dirname(d)
  return fs.existsSync(path.join(d, '.git')) ? d : process.cwd()
}
