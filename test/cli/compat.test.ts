import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {startDaemon, removeHome, runCli, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {legacyRequest, tokenOf} from '../helpers/legacy.js'
import {daemonHost} from '../../src/client/transport.js'

// The first Styxy's hooks have only what it gave them: GET /status without a token, and the token at
// ~/.styxy/auth.token sent as X-API-Key. HOME is a temp directory throughout: the real ~ is never touched.
describe('styxy compat: the first Styxy\'s clients get their token', function () {
  this.timeout(30_000)
  let d: TestDaemon
  let userHome: string
  const tokenCopy = () => path.join(userHome, '.styxy', 'auth.token')
  const cli = (...args: string[]) => runCli(args, {...d.env, HOME: userHome})
  const mode = (p: string) => fs.statSync(p).mode & 0o777

  beforeEach(async () => {
    userHome = tempHome('styxy-user-home-')
    d = await startDaemon({env: {HOME: userHome}})
  })
  afterEach(async () => {
    await d?.stop()
    if (d) removeHome(d.home)
    removeHome(userHome)
  })

  it('GET /status answers without a token (counts only); X-API-Key and Bearer are accepted, nothing else', async () => {
    const status = await legacyRequest(d, 'GET', '/status', undefined, {})
    expect(status.status).to.equal(200)
    expect(status.body).to.have.keys('status', 'uptime', 'allocations', 'instances')
    // Still no browsers: an Origin is refused even on the tokenless route, and so is a foreign Host.
    expect((await legacyRequest(d, 'GET', '/status', undefined, {origin: 'http://evil.example'})).status).to.equal(403)
    expect((await legacyRequest(d, 'GET', '/status', undefined, {host: `evil.example:${d.port}`})).status).to.equal(403)
    expect((await legacyRequest(d, 'GET', '/allocations', undefined, {'x-api-key': tokenOf(d)})).status).to.equal(200)
    expect((await legacyRequest(d, 'GET', '/allocations', undefined, {authorization: `Bearer ${tokenOf(d)}`})).status).to.equal(200)
    expect((await legacyRequest(d, 'GET', '/v1/health', undefined, {'x-api-key': tokenOf(d)})).status).to.equal(200)
    const none = await legacyRequest(d, 'GET', '/allocations', undefined, {})
    expect(none.status).to.equal(401)
    expect(none.body).to.include({success: false})
  })

  it('compat on writes ~/.styxy/auth.token (0600 in 0700) with the daemon\'s token, which works; off removes it; status says which', async () => {
    expect(JSON.parse((await cli('compat', 'status', '--json')).stdout)).to.include({enabled: false, present: false, tokenCopy: tokenCopy()})
    expect(fs.existsSync(tokenCopy())).to.equal(false)
    const on = await cli('compat', 'on', '--json')
    expect(on.code, on.stderr).to.equal(0)
    expect(JSON.parse(on.stdout)).to.include({enabled: true, present: true, tokenCopy: tokenCopy()})
    expect(mode(path.dirname(tokenCopy()))).to.equal(0o700)
    expect(mode(tokenCopy())).to.equal(0o600)
    const copied = fs.readFileSync(tokenCopy(), 'utf8').trim()
    expect(copied).to.equal(tokenOf(d))
    const withCopy = await legacyRequest(d, 'GET', '/instance/list', undefined, {'x-api-key': copied})
    expect(withCopy.status).to.equal(200)
    const human = await cli('compat', 'status')
    expect(human.stdout).to.contain('compat on').and.contain(tokenCopy())
    const off = await cli('compat', 'off', '--json')
    expect(off.code, off.stderr).to.equal(0)
    expect(JSON.parse(off.stdout)).to.include({enabled: false, present: false})
    expect(fs.existsSync(tokenCopy())).to.equal(false)
  })

  it('refuses a symlinked ~/.styxy, naming the path and the fix, and writes nothing through it', async () => {
    const elsewhere = tempHome('styxy-elsewhere-')
    try {
      fs.symlinkSync(elsewhere, path.join(userHome, '.styxy'))
      const on = await cli('compat', 'on')
      expect(on.code).to.equal(4)
      expect(on.stderr).to.contain(path.join(userHome, '.styxy')).and.contain('symlink').and.contain('Remove it')
      expect(fs.readdirSync(elsewhere)).to.deep.equal([])
      expect(JSON.parse((await cli('compat', 'status', '--json')).stdout)).to.include({enabled: false})
      // A symlinked token file is refused the same way.
      fs.rmSync(path.join(userHome, '.styxy'))
      fs.mkdirSync(path.join(userHome, '.styxy'), {mode: 0o700})
      fs.symlinkSync(path.join(elsewhere, 'stolen'), tokenCopy())
      const file = await cli('compat', 'on', '--json')
      expect(file.code).to.equal(4)
      expect(JSON.parse(file.stdout).error.message).to.contain(tokenCopy()).and.contain('symlink')
      expect(fs.existsSync(path.join(elsewhere, 'stolen'))).to.equal(false)
    } finally {
      removeHome(elsewhere)
    }
  })

  it('the copy follows the token: a daemon start that makes a new token rewrites it', async () => {
    expect((await cli('compat', 'on')).code).to.equal(0)
    const first = tokenOf(d)
    await d.stop()
    // The token is made anew when its file is gone (ensureToken): the only way it changes.
    fs.rmSync(path.join(d.home, 'token'))
    d = await startDaemon({home: d.home, env: {HOME: userHome}})
    const second = tokenOf(d)
    expect(second).to.not.equal(first)
    expect(fs.readFileSync(tokenCopy(), 'utf8').trim()).to.equal(second)
    expect((await legacyRequest(d, 'GET', '/allocations', undefined, {'x-api-key': second})).status).to.equal(200)
    // Off: the next start writes nothing.
    expect((await cli('compat', 'off')).code).to.equal(0)
    await d.stop()
    d = await startDaemon({home: d.home, env: {HOME: userHome}})
    expect(fs.existsSync(tokenCopy())).to.equal(false)
  })

  it('STYXY_DAEMON_HOST=localhost reaches the daemon over TCP (taken as 127.0.0.1)', async () => {
    expect(daemonHost({STYXY_DAEMON_HOST: 'localhost'})).to.equal('127.0.0.1')
    expect(daemonHost({})).to.equal('127.0.0.1')
    const r = await runCli(['status', '--json'], {...d.env, STYXY_SOCKET: path.join(d.home, 'no-such.sock'), STYXY_DAEMON_HOST: 'localhost'})
    expect(r.code, r.stderr).to.equal(0)
    expect(JSON.parse(r.stdout)).to.include({running: true, pid: d.pid})
  })
})
