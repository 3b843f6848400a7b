import {expect} from 'chai'
import {CLI, removeHome, startDaemon, type TestDaemon} from '../helpers/daemon.js'
import {freePort} from '../helpers/processes.js'
import {PROJECT_ROOT} from '../../src/project.js'
import {startProgram, type Program} from '../helpers/programs.js'
import {report, within} from '../helpers/proof.js'
import {startTimeOf} from '../../src/shared/proc-stat.js'
import fs from 'node:fs'
import path from 'node:path'

// Issue 17, item 8: `kill -TERM` on `styxy run -- npm run dev` left the dev servers running, holding their
// leases: npm does not pass signals on. The stand-in for npm is a shell that starts a server and ignores TERM.
const HTTPSERVE = path.join(PROJECT_ROOT, 'zig-out', 'bin', 'httpserve')

const childrenOf = (pid: number): number[] => {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

describe('proof: nothing left running after styxy run is told to stop', () => {
  let d: TestDaemon
  const running: Program[] = []
  const figures: Record<string, number> = {}
  before(async () => { d = await startDaemon() })
  afterEach(async () => {
    for (const p of running.splice(0)) {
      // Whatever a failed test left: the command's process group (or, without one, its processes).
      for (const pid of childrenOf(p.child.pid!)) {
        for (const target of [-pid, ...childrenOf(pid), pid]) {
          try { process.kill(target, 'SIGKILL') } catch { /* gone */ }
        }
      }
      await p.stop()
    }
  })
  after(async () => {
    report('leftovers', figures)
    await d.stop()
    removeHome(d.home)
  })

  const run = (args: string[]) => {
    const p = startProgram(process.execPath, [CLI, 'run', ...args], d.env, {preload: false})
    running.push(p)
    return p
  }
  const leaseOf = async (port: number) => (await d.client.leases()).find((l) => l.port === port)
  const gone = (pid: number) => startTimeOf(pid) === null

  /** Starts `script` (its server on `port`) under styxy run, waits for the server's lease; returns the server's pid. */
  async function serving(p: Program, port: number): Promise<number> {
    await p.waitFor(/listening on \d+/)
    const lease = await within(5000, async () => (await leaseOf(port)) !== undefined, `the server's lease of ${port}`).then(() => leaseOf(port))
    return lease!.pid!
  }

  it('SIGTERM: a wrapper that ignores it does not keep its server alive; the server goes, and its lease with it', async () => {
    const port = await freePort()
    // Started before the trap: the server keeps the default action for TERM; the wrapper (like npm) ignores it.
    const p = run(['--', 'sh', '-c', `${HTTPSERVE} ${port} & trap '' TERM; wait $!`])
    const server = await serving(p, port)
    const t0 = Date.now()
    p.child.kill('SIGTERM')
    figures.termReleasedMs = await within(4000, async () => gone(server) && (await leaseOf(port)) === undefined, 'server gone and its lease released')
    const {code} = await p.exited
    // The wrapper's own status, its server's: killed by TERM.
    expect(code).to.equal(143)
    expect(Date.now() - t0, 'ended by the TERM, not by the SIGKILL after the grace period').to.be.below(5000)
  })

  it('a server that ignores SIGTERM too is killed after the grace period (--grace), and its lease released', async () => {
    const port = await freePort()
    // Started after the trap: an ignored signal stays ignored across fork and exec, so the server ignores TERM too.
    const p = run(['--grace', '0.5', '--', 'sh', '-c', `trap '' TERM; ${HTTPSERVE} ${port} & wait`])
    const server = await serving(p, port)
    const t0 = Date.now()
    p.child.kill('SIGTERM')
    await within(5000, async () => gone(server), 'the server killed')
    figures.graceKilledMs = Date.now() - t0
    expect(figures.graceKilledMs).to.be.at.least(500)
    await within(3000, async () => (await leaseOf(port)) === undefined, 'its lease released')
    await p.exited
  })

  it('seccomp backend: the command gets one SIGTERM (from the group), not a second one from the supervisor', async () => {
    const port = await freePort()
    const script = [
      'import signal, socket, sys, time',
      'n = 0',
      'def term(*_):',
      '    global n',
      '    n += 1',
      '    print(f"TERM {n}", flush=True)',
      'signal.signal(signal.SIGTERM, term)',
      `s = socket.socket(); s.bind(("127.0.0.1", ${port})); s.listen()`,
      'print("listening on", s.getsockname()[1], flush=True)',
      'while n == 0: time.sleep(0.05)',
      'time.sleep(0.5)',
      'sys.exit(0)',
    ].join('\n')
    const p = run(['--backend', 'seccomp', '--', 'python3', '-c', script])
    await serving(p, port)
    p.child.kill('SIGTERM')
    const {code} = await p.exited
    expect(code).to.equal(0)
    expect(p.stdout()).to.contain('TERM 1').and.not.contain('TERM 2')
    await within(3000, async () => (await leaseOf(port)) === undefined, 'its lease released')
  })
})
