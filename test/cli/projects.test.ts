import {expect} from 'chai'
import {spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {CLI, removeHome, startDaemon, tempHome, type TestDaemon} from '../helpers/daemon.js'
import {freePort, killAll, spawnHolder, startHolder} from '../helpers/processes.js'
import {projectRoot} from '../../src/shared/project.js'

/** The real CLI, run from `cwd`. */
function cliIn(cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {cwd, env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    child.on('close', (code) => resolve({code, stdout, stderr}))
  })
}

describe('CLI: projects', () => {
  let d: TestDaemon
  let root: string
  let a: string
  let b: string
  const holders: ChildProcess[] = []
  before(async () => {
    d = await startDaemon({env: {STYXY_LISTEN_GRACE_MS: '600000'}})
    root = fs.realpathSync(tempHome('styxy-wt-'))
    a = path.join(root, 'a')
    b = path.join(root, 'b')
    for (const dir of [a, b]) {
      fs.mkdirSync(path.join(dir, '.git'), {recursive: true})
      fs.mkdirSync(path.join(dir, 'web', 'src'), {recursive: true})
    }
  })
  after(async () => {
    await d.stop()
    await killAll(holders)
    removeHome(d.home)
    removeHome(root)
  })

  it('run --project DIR gives the command STYXY_PROJECT as an absolute path; without it the variable is left as it was', async () => {
    const show = ['--', 'sh', '-c', 'printf "%s" "${STYXY_PROJECT-unset}"']
    const named = await cliIn(path.join(a, 'web'), ['run', '--project', '../other', ...show], d.env)
    expect(named.code, named.stderr).to.equal(0)
    expect(named.stdout).to.equal(path.join(a, 'other'))
    expect((await cliIn(a, ['run', ...show], d.env)).stdout).to.equal('unset')
    expect((await cliIn(a, ['run', ...show], {...d.env, STYXY_PROJECT: '/from/outside'})).stdout).to.equal('/from/outside')
  })

  it('allocate and run --port record the project of the worktree they are started in, or the one named', async () => {
    const here = await cliIn(path.join(a, 'web', 'src'), ['allocate', '-s', 'docs', '--json'], d.env)
    expect(here.code, here.stderr).to.equal(0)
    expect(JSON.parse(here.stdout)).to.include({project: a})
    const named = JSON.parse((await cliIn(a, ['allocate', '-s', 'docs', '--project', '../b/', '--json'], d.env)).stdout)
    expect(named).to.include({project: b})
    const fromEnv = JSON.parse((await cliIn(a, ['allocate', '-s', 'docs', '--json'], {...d.env, STYXY_PROJECT: b})).stdout)
    expect(fromEnv).to.include({project: b})
    // The run's own lease, seen by the command it runs.
    const port = await freePort()
    const run = await cliIn(path.join(b, 'web'), ['run', '--port', String(port), '--', process.execPath, CLI, 'list', '--json'], d.env)
    expect(run.code, run.stderr).to.equal(0)
    expect((JSON.parse(run.stdout) as {port: number; project: string}[]).find((l) => l.port === port)).to.include({project: b})
  })

  it("an instance registered with a pid only is recorded under its process's worktree; one that names its project, under that", async () => {
    const h = spawnHolder()
    holders.push(h)
    await new Promise((r) => h.once('spawn', r))
    const mine = await d.client.registerInstance({pid: h.pid!})
    // The holder runs where this test runs: its worktree's top by the shared rule.
    expect(mine.project).to.equal(projectRoot(fs.realpathSync(process.cwd())))
    expect((await d.client.registerInstance({id: 'agent-b', project: `${b}/`})).project).to.equal(b)
    const instances = JSON.parse((await cliIn(root, ['instances', '--json'], d.env)).stdout) as {id: string; project: string}[]
    expect(instances.find((i) => i.id === 'agent-b')).to.include({project: b})
  })

  it('list shows a moved lease with the port it asked for, and which ports its project follows', async () => {
    const holder = () => startHolder(holders)
    const P = await freePort()
    await d.client.bind({pid: await holder(), port: P, cwd: a})
    const moved = await d.client.bind({pid: await holder(), port: P, cwd: path.join(b, 'web')})
    expect(moved.action).to.equal('remap')
    const list = await cliIn(root, ['list'], d.env)
    // PORT, SERVICE, URL (each lease named: http://NAME.localhost:<proxy port>/), HOLDER.
    expect(list.stdout).to.match(new RegExp(`^${moved.port} \\(asked ${P}\\)\\s+\\S+\\s+http://\\S+\\s+pid`, 'm'))
    expect(list.stdout).to.match(new RegExp(`^${P}\\s+\\S+\\s+http://\\S+\\s+pid`, 'm'))
    expect(list.stdout).to.contain(`  ${P} -> ${moved.port}  ${b}`)
    const json = JSON.parse((await cliIn(root, ['list', '--json'], d.env)).stdout) as {port: number; requestedPort: number; project: string}[]
    expect(json.find((l) => l.port === moved.port)).to.include({requestedPort: P, project: b})
    await d.client.release(moved.leaseId!)
    expect((await cliIn(root, ['list'], d.env)).stdout).to.not.contain('Followed')
  })
})
