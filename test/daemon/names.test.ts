import {expect} from 'chai'
import type {ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {proxyPort} from '../../src/paths.js'
import {removeHome, runCli, startDaemon, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, killAll, listenOn, portOf, startHolder} from '../helpers/processes.js'
import {within} from '../helpers/proof.js'

// How a real daemon names leases (src/core/names.ts decides, src/daemon/names.ts keeps them unique and sticky).

/** Ports no built-in type covers, below the ephemeral range: the type comes from the command (vite: dev). */
const BASE = 24000 + 100 * Math.floor(Math.random() * 50)

function worktree(home: string, name: string): string {
  const dir = path.join(home, name)
  fs.mkdirSync(path.join(dir, '.git'), {recursive: true})
  return dir
}

describe('daemon: server names', () => {
  let home: string
  let d: TestDaemon
  const holders: ChildProcess[] = []
  let shop: string

  before(async () => {
    home = tempHome()
    shop = worktree(home, 'Shop')
    d = await startDaemon({home})
  })
  after(async () => {
    await killAll(holders)
    await d.stop()
    removeHome(home)
  })

  const bind = async (port: number, opts: {name?: string; command?: string; cwd?: string} = {}) => {
    const pid = await startHolder(holders)
    const answer = await d.client.bind({pid, port, command: opts.command ?? 'node vite.js', cwd: opts.cwd ?? shop, ...(opts.name ? {name: opts.name} : {})})
    const lease = (await d.client.leases()).find((l) => l.id === answer.leaseId)!
    return {pid, lease}
  }

  it('the first dev server of a worktree is named after it; the next gets -2; other types are SERVICE.PROJECT', async () => {
    const first = await bind(BASE)
    const second = await bind(BASE + 1)
    const api = await bind(BASE + 2, {command: 'uvicorn app:app'})
    expect(first.lease.name).to.equal('shop')
    expect(second.lease.name).to.equal('shop-2')
    expect(api.lease).to.include({service: 'api', name: 'api.shop'})
    const status = await d.client.status()
    expect(first.lease.url).to.equal(`http://shop.localhost:${status.proxy!.port}/`)
  })

  it('a given name (STYXY_NAME) is kept, sanitized, and suffixed while another live lease has it: a bind is never refused over a name', async () => {
    const a = await bind(BASE + 10, {name: 'Web'})
    const b = await bind(BASE + 11, {name: 'web'})
    expect([a.lease.name, b.lease.name]).to.deep.equal(['web', 'web-2'])
    await killAll(holders.filter((h) => h.pid === a.pid))
    await d.client.releaseExited(a.pid)
    expect((await bind(BASE + 12, {name: 'web'})).lease.name).to.equal('web')
  })

  it('an allocation keeps the name it asks for (per project, as before); the name leads to its first live holder', async () => {
    const other = await d.client.allocate({service: 'api', name: 'web', project: '/elsewhere/other'})
    expect(other.name).to.equal('web')
    const web = (await d.client.leases()).filter((l) => l.name === 'web')
    expect(web.map((l) => l.url !== null)).to.deep.equal(web.map((l) => l.id !== other.id))
    await d.client.release(other.id)
    const derived = await d.client.allocate({service: 'docs', project: '/elsewhere/handbook'})
    expect(derived.name).to.equal('docs.handbook')
    await d.client.release(derived.id)
  })

  it('a server restarted on its own port in the turn that ends its predecessor\'s lease keeps name and URL', async () => {
    const tree = worktree(home, 'again')
    const first = await bind(BASE + 30, {cwd: tree})
    // Killed without a word to the daemon: the next bind of the port finds the holder dead and takes over.
    await killAll(holders.filter((x) => x.pid === first.pid))
    const second = await bind(BASE + 30, {cwd: tree})
    expect(second.lease).to.include({port: BASE + 30, name: 'again', url: first.lease.url})
    expect(second.lease.url).to.be.a('string')
    const listed = (await d.client.leases()).find((l) => l.id === second.lease.id)!
    expect(listed.url).to.equal(first.lease.url)
  })

  it('names are sticky per project, type and asked port, across a daemon restart', async () => {
    const tree = worktree(home, 'sticky')
    const one = await bind(BASE + 20, {cwd: tree})
    const two = await bind(BASE + 21, {cwd: tree})
    expect([one.lease.name, two.lease.name]).to.deep.equal(['sticky', 'sticky-2'])
    for (const h of [one.pid, two.pid]) {
      await killAll(holders.filter((x) => x.pid === h))
      await d.client.releaseExited(h)
    }
    await d.stop()
    d = await startDaemon({home})
    // The second server starts first this time: it gets its own name back, not the free bare one.
    expect((await bind(BASE + 21, {cwd: tree})).lease.name).to.equal('sticky-2')
    expect((await bind(BASE + 20, {cwd: tree})).lease.name).to.equal('sticky')
  })

  it('the proxy port: beside the daemon\'s by default, STYXY_PROXY_PORT a port, 0 or off', () => {
    expect(proxyPort({}, 9876)).to.equal(9877)
    expect(proxyPort({}, 0)).to.equal(0)
    expect(proxyPort({STYXY_PROXY_PORT: '7000'}, 9876)).to.equal(7000)
    expect(proxyPort({STYXY_PROXY_PORT: 'off'}, 9876)).to.equal(null)
    expect(() => proxyPort({STYXY_PROXY_PORT: 'x'}, 9876)).to.throw(/STYXY_PROXY_PORT/)
  })
})

describe('daemon: the names proxy\'s port taken', () => {
  it('the daemon starts anyway, status and doctor say the proxy is off and why, and it listens once the port is free', async () => {
    const squatter = await listenOn('127.0.0.1')
    const port = portOf(squatter)
    let squatting = true
    const d = await startDaemon({env: {STYXY_PROXY_PORT: String(port), STYXY_TCP_RETRY_MAX_MS: '200'}})
    try {
      const off = await d.client.status()
      expect(off.proxy).to.include({host: '127.0.0.1', port, listening: false})
      expect(off.proxy!.error).to.match(/^EADDRINUSE/)
      expect((await d.client.health()).proxyPort).to.equal(null)
      const status = await runCli(['status'], d.env)
      expect(status.stdout).to.match(new RegExp(`proxy +off: 127\\.0\\.0\\.1:${port} EADDRINUSE`))
      const doctor = JSON.parse((await runCli(['doctor', '--json'], d.env)).stdout) as {checks: {name: string; level: string}[]}
      expect(doctor.checks.find((c) => c.name === 'names proxy')).to.include({level: 'warn'})
      expect(d.output()).to.contain(`names proxy 127.0.0.1:${port} is unavailable (EADDRINUSE`)
      await closeServer(squatter)
      squatting = false
      await within(5000, async () => (await d.client.health()).proxyPort === port, 'the proxy listening after its port was freed')
      expect((await runCli(['status'], d.env)).stdout).to.contain(`proxy     http://NAME.localhost:${port}/`)
    } finally {
      if (squatting) await closeServer(squatter)
      await d.stop()
      removeHome(d.home)
    }
  })
})
