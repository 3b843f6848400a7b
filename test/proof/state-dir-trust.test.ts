import {expect} from 'chai'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {spawnSync} from 'node:child_process'
import {DAEMON_ENTRY, DAEMON_NODE_FLAGS} from '../../src/client/ensure-daemon.js'
import {isolatedEnv, removeHome, runCli, startDaemon, tempHome} from '../helpers/daemon.js'
import {freePort} from '../helpers/processes.js'
import {BINDPROBE, parseProbe} from '../helpers/programs.js'
import {report} from '../helpers/proof.js'

/** Another user's daemon, as far as a client can tell: a listener on the state directory's socket path that counts who connects. */
async function planted(dir: string): Promise<{connections: () => number; close: () => Promise<void>}> {
  let n = 0
  const server = net.createServer((s) => { n++; s.destroy() })
  await new Promise<void>((resolve) => server.listen(path.join(dir, 'daemon.sock'), resolve))
  fs.writeFileSync(path.join(dir, 'token'), 'f'.repeat(64))
  return {connections: () => n, close: () => new Promise((resolve) => server.close(() => resolve()))}
}

/**
 * What every part of Styxy does with the state directory `home`: the CLI refuses (exit 3, STATE_DIR_UNSAFE,
 * naming the path and the fix), the daemon refuses to start there, and `styxy run` still runs its program,
 * whose library sends nothing either. `why` is the part of the message that names the fault.
 */
async function expectRefused(home: string, why: RegExp, plantedIn: string): Promise<number> {
  const socket = await planted(plantedIn)
  const env = isolatedEnv(home, await freePort())
  try {
    const status = await runCli(['status'], env)
    expect(status.code, status.stderr).to.equal(3)
    expect(status.stderr).to.contain(`the state directory ${home} `).and.match(why).and.contain('Fix: ')
    const json = await runCli(['list', '--json'], env)
    expect(JSON.parse(json.stdout).error.code).to.equal('STATE_DIR_UNSAFE')
    expect((await runCli(['daemon', 'start'], env)).code).to.equal(3)
    // The daemon itself, started directly (as a supervisor would): it refuses too.
    const daemon = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_ENTRY], {env, encoding: 'utf8', timeout: 20_000})
    expect(daemon.status, daemon.stderr).to.equal(5)
    expect(daemon.stderr).to.contain(`the state directory ${home} `).and.match(why)
    // `styxy run`: one warning, the program runs on its own port, and neither run's exit watch and cleanup nor
    // the library's bind request reached the socket.
    const port = await freePort()
    const run = await runCli(['run', '--', BINDPROBE, '--family', '4', String(port)], {...env, STYXY_DEBUG: '1'})
    expect(run.code, run.stderr).to.equal(0)
    expect(parseProbe(run.stdout).bound[0]).to.include({actual: port, error: '0'})
    expect(run.stderr).to.contain(`the state directory ${home} `)
    expect(run.stderr).to.match(/styxy-preload: port \d+: fail open: state directory .* not trusted/)
    expect(socket.connections(), 'connections to the planted socket').to.equal(0)
    return socket.connections()
  } finally {
    await socket.close()
  }
}

describe('faults: a state directory Styxy cannot trust', () => {
  const figures: Record<string, unknown> = {}
  const dirs: string[] = []
  const scratch = () => { const d = tempHome('styxy-trust-'); dirs.push(d); return d }
  after(() => {
    for (const d of dirs) removeHome(d)
    report('state-dir-trust', figures)
  })

  it('made beforehand with mode 0777, with a socket and a token planted in it: refused by the CLI, the daemon and the library', async () => {
    const home = path.join(scratch(), 'styxy')
    fs.mkdirSync(home)
    fs.chmodSync(home, 0o777)
    figures.open0777Connections = await expectRefused(home, /is writable by every user \(mode 0777\).*mv /, home)
    expect(fs.statSync(home).mode & 0o777).to.equal(0o777) // refused, not repaired: what is in it may not be ours
  })

  it('a symbolic link to a private directory: refused, and nothing it points at is chmodded', async () => {
    const top = scratch()
    const target = path.join(top, 'elsewhere')
    fs.mkdirSync(target)
    fs.chmodSync(target, 0o750)
    const home = path.join(top, 'styxy')
    fs.symlinkSync(target, home)
    figures.symlinkConnections = await expectRefused(home, new RegExp(`is a symbolic link \\(to ${target}\\).*rm ${home}`), target)
    expect(fs.statSync(target).mode & 0o777).to.equal(0o750)
  })

  it("another user's directory (root only: made for nobody): refused", async function () {
    if (process.getuid?.() !== 0) return this.skip()
    const home = path.join(scratch(), 'styxy')
    fs.mkdirSync(home, {mode: 0o700})
    // The listener is made while the directory is still ours; then it changes hands.
    const socket = await planted(home)
    await socket.close()
    fs.chownSync(home, 65534, 65534)
    const env = isolatedEnv(home, await freePort())
    const status = await runCli(['status'], env)
    expect(status.code).to.equal(3)
    expect(status.stderr).to.contain(`the state directory ${home} belongs to uid 65534, not to you (uid 0)`)
    const daemon = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_ENTRY], {env, encoding: 'utf8', timeout: 20_000})
    expect(daemon.status, daemon.stderr).to.equal(5)
    expect(daemon.stderr).to.contain('belongs to uid 65534')
  })

  it("our own directory left 0755 by an older version: the daemon tightens it to 0700 and says so; a fresh one is made 0700", async () => {
    const home = path.join(scratch(), 'styxy')
    fs.mkdirSync(home)
    fs.chmodSync(home, 0o755)
    const d = await startDaemon({home})
    try {
      expect(fs.statSync(home).mode & 0o777).to.equal(0o700)
      expect(d.output()).to.contain(`state directory ${home} was open to other users`)
      expect((await d.client.health()).pid).to.equal(d.pid)
    } finally {
      await d.stop()
    }
    const fresh = path.join(scratch(), 'a', 'b', 'styxy')
    const r = await runCli(['daemon', 'start'], isolatedEnv(fresh, 0))
    expect(r.code, r.stderr).to.equal(0)
    expect(fs.statSync(fresh).mode & 0o777).to.equal(0o700)
    expect((await runCli(['daemon', 'stop'], isolatedEnv(fresh, 0))).code).to.equal(0)
  })
})
