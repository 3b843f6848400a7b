import {expect} from 'chai'
import path from 'node:path'
import {PROJECT_ROOT} from '../../src/project.js'
import {CLI, removeHome, runCommand, startDaemon, type TestDaemon} from '../helpers/daemon.js'

// `styxy run` in a terminal's foreground keeps its command in its own process group (issue 17 item 8 puts the
// command in a group of its own only without a terminal): the command can still use the terminal, and Ctrl-C
// reaches it from the terminal itself.
const IN_PTY = path.join(PROJECT_ROOT, 'test', 'fixtures', 'in-pty.py')

describe('styxy run in a terminal', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon() })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })

  const inPty = (typed: string, script: string) =>
    runCommand('python3', [IN_PTY, 'ready', typed, '--', process.execPath, CLI, 'run', '--', 'sh', '-c', script], d.env)

  it('the command reads the terminal it runs on (/dev/tty is its controlling terminal)', async () => {
    const r = await inPty('hello\\n', 'echo ready; read x < /dev/tty; echo "got $x"')
    expect(r.stdout).to.contain('got hello')
    expect(r.code, r.stdout + r.stderr).to.equal(0)
  })

  it("Ctrl-C from the terminal ends the command (130), once", async () => {
    // A second SIGINT (passed on by styxy run after the terminal's own) would print INT twice within the 0.3 s.
    const r = await inPty('\\x03', 'trap \'echo INT; done=1\' INT; echo ready; while [ -z "$done" ]; do sleep 0.05; done; sleep 0.3; exit 130')
    expect(r.code, r.stdout + r.stderr).to.equal(130)
    expect(r.stdout.match(/INT\r?\n/g), JSON.stringify(r.stdout)).to.have.length(1)
  })
})
