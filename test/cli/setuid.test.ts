import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {removeHome, runCli, startDaemon, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf} from '../helpers/processes.js'
import {PROJECT_ROOT} from '../../src/project.js'
import {setIdFacts} from '../../src/cli/backend.js'
import {setIdEffect} from '../../src/core/setid.js'

// Issue 17, item 10: `--explain` said LD_PRELOAD reaches a setuid program's bind (the loader drops it), and
// under the seccomp backend a setuid program silently ran without its setuid identity.
const HTTPSERVE = path.join(PROJECT_ROOT, 'zig-out', 'bin', 'httpserve')
const ID = ['/usr/bin/id', '/bin/id'].find((p) => fs.existsSync(p))!
const lines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l))

describe('styxy run and set-id programs', () => {
  let d: TestDaemon
  let dir: string
  before(async () => {
    d = await startDaemon()
    dir = tempHome('styxy-setid-')
  })
  after(async () => {
    await d.stop()
    removeHome(d.home)
    removeHome(dir)
  })

  /** A copy of `from`, set-user-ID, owned by `uid` (changing the owner needs root). */
  function setuidCopy(from: string, name: string, uid?: number): string {
    const file = path.join(dir, name)
    fs.copyFileSync(from, file)
    if (uid !== undefined) fs.chownSync(file, uid, uid)
    fs.chmodSync(file, 0o4755) // after chown, which clears the bit
    return file
  }

  it('a copy set-user-ID to its own owner (you): explain says it changes nothing, and run does not warn', async () => {
    const file = setuidCopy(ID, 'id-own')
    const explained = await runCli(['run', '--explain', '--', file, '-u'], d.env)
    expect(explained.code, explained.stderr).to.equal(0)
    expect(explained.stdout.trim()).to.equal(String(process.getuid!()))
    expect(explained.stderr).to.contain(`styxy: ${file} is set-user-ID (uid ${process.getuid!()}), but you are uid ${process.getuid!()}`)
    expect(explained.stderr).to.contain('LD_PRELOAD reaches it')
    const plain = await runCli(['run', '--', file, '-u'], d.env)
    expect(plain.stderr).to.equal('')
  })

  describe('set-user-ID to another user (needs root to make)', () => {
    before(function () {
      if (process.getuid?.() !== 0) this.skip()
      // A nosuid temp directory makes the bit inert, which the test above covers.
      const probe = setuidCopy(ID, 'id-probe', 65534)
      if (setIdEffect(setIdFacts(probe)).kind !== 'changes') this.skip()
    })

    it('under LD_PRELOAD: explain and one warning say the loader drops it, and it does: a taken port is not moved', async () => {
      const id = setuidCopy(ID, 'id-nobody', 65534)
      const r = await runCli(['run', '--explain', '--', id, '-u'], d.env)
      expect(r.stdout.trim(), 'the identity really changes').to.equal('65534')
      expect(r.stderr).to.contain(`${id}: dynamically linked`).and.contain('but set-id: the loader ignores LD_PRELOAD for it')
      const warned = lines(r.stderr, /is set-user-ID/)
      expect(warned).to.deep.equal([`styxy: ${id} is set-user-ID (uid 65534): it runs as uid 65534, so the loader ignores LD_PRELOAD (secure execution) and drops it from the environment: neither its binds nor those of what it starts are coordinated`])
      expect(lines((await runCli(['run', '--', id, '-u'], d.env)).stderr, /styxy:/), 'once, without --explain too').to.have.length(1)

      // What it says is what happens: a server that would be moved off a taken port (test/interceptor) is not,
      // set-user-ID: its bind fails as it would without Styxy.
      const taken = await listenOn('127.0.0.1')
      try {
        const server = setuidCopy(HTTPSERVE, 'httpserve-nobody', 65534)
        const r2 = await runCli(['run', '--', server, String(portOf(taken))], d.env)
        expect(r2.code).to.equal(1)
        expect(r2.stderr).to.contain(`bind ${portOf(taken)}: Address already in use`)
      } finally {
        await closeServer(taken)
      }
    })

    it('under the seccomp backend: explain and one warning say it runs as you, and it does', async () => {
      const id = setuidCopy(ID, 'id-nobody-seccomp', 65534)
      const r = await runCli(['run', '--backend', 'seccomp', '--explain', '--', id, '-u'], d.env)
      expect(r.stdout.trim(), 'no_new_privs: the kernel ignored the bit').to.equal(String(process.getuid!()))
      expect(lines(r.stderr, /is set-user-ID/)).to.deep.equal([`styxy: ${id} is set-user-ID (uid 65534): under the seccomp backend it runs without that identity, as you (uid ${process.getuid!()}), since the filter needs no_new_privs; --backend preload keeps its identity but not its binds`])
    })
  })
})
