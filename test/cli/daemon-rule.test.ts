import {expect} from 'chai'
import {removeHome, runCli, runCommand, tempHome, isolatedEnv, CLI} from '../helpers/daemon.js'
import {freePort} from '../helpers/processes.js'

// One rule (docs/cli.md): every command that needs the daemon starts it, as `run` does. Each command below
// starts from a stopped daemon, must do its job, and leaves a running daemon behind (stopped again after).

describe('CLI: every command that needs the daemon starts it', () => {
  let home: string
  let env: NodeJS.ProcessEnv
  before(async () => {
    home = tempHome()
    env = isolatedEnv(home, await freePort())
  })
  afterEach(async () => { await runCli(['daemon', 'stop'], env) })
  after(() => removeHome(home))

  const running = async () => (await runCli(['daemon', 'status'], env)).code === 0

  const cases: [string[], number, RegExp][] = [
    [['list'], 0, /No active leases/],
    [['log'], 0, /No moves recorded/],
    [['instances'], 0, /No registered instances/],
    [['cleanup'], 0, /Released 0 lease/],
    [['scan', '--service', 'coordination'], 0, /Nothing in use between 9870 and 9899|listening/],
    [['suggest', 'docs'], 0, /^41\d\d$/m],
    [['allocate', '-s', 'docs'], 0, /^41\d\d \(lease /],
    // Commands about a lease or a server that cannot exist yet: the daemon answers (exit 4), not "not running" (3).
    [['release', '4199'], 4, /no lease on port 4199/],
    [['stop', 'nosuchserver'], 4, /no server named "nosuchserver"/],
    [['daemon', 'reload'], 0, /service types/],
  ]
  for (const [args, code, out] of cases) {
    it(`styxy ${args.join(' ')}`, async () => {
      expect(await running()).to.equal(false)
      const r = await runCli(args, env)
      expect(r.code, r.stderr).to.equal(code)
      expect(r.stdout + r.stderr).to.match(out)
      expect(await running()).to.equal(true)
    })
  }

  it('styxy check 5432 || echo busy: the answer, not the daemon being down', async () => {
    expect(await running()).to.equal(false)
    const port = await freePort()
    const r = await runCommand('sh', ['-c', `"${process.execPath}" "${CLI}" check ${port} || echo "busy: $?"`], env)
    expect(r.stdout).to.equal(`Port ${port} is free\n`)
    expect(r.stderr).to.equal('')
  })

  it('status and daemon status report a stopped daemon without starting it', async () => {
    expect((await runCli(['status'], env)).code).to.equal(1)
    expect((await runCli(['daemon', 'status'], env)).code).to.equal(1)
    expect(await running()).to.equal(false)
  })
})
