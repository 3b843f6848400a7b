import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {startDaemon, removeHome, runCli, runCommand, CLI, type TestDaemon} from '../helpers/daemon.js'
import {closeServer, listenOn, portOf} from '../helpers/processes.js'

// What a new user meets in the first hour: each case failed before its fix.

const json = (s: string) => JSON.parse(s) as any

describe('CLI: unknown input, help and the rough edges', () => {
  let d: TestDaemon
  before(async () => { d = await startDaemon() })
  after(async () => {
    await d.stop()
    removeHome(d.home)
  })
  const cli = (...args: string[]) => runCli(args, d.env)

  it('suggest with an unknown type is an error (exit 4), not dev ports', async () => {
    const r = await cli('suggest', 'nosuchtype')
    expect(r.code).to.equal(4)
    expect(r.stdout).to.equal('')
    expect(r.stderr).to.contain('unknown service type "nosuchtype"; valid types: dev, api')
    expect(json((await cli('suggest', 'nosuchtype', '--json')).stdout).error.code).to.equal('UNKNOWN_SERVICE')
  })

  it('tail with an unknown event type or service type exits at once instead of waiting forever', async () => {
    const t = await cli('tail', '--type', 'nosuch')
    expect(t.code).to.equal(2)
    expect(t.stderr).to.contain('unknown event type "nosuch": give a family (daemon, lease, bind, connect, instance, config)')
    const s = await cli('tail', '--service', 'nosuch')
    expect(s.code).to.equal(4)
    expect(s.stderr).to.contain('unknown service type "nosuch"')
  })

  it('which takes a command line with options of its own, without --', async () => {
    const r = await cli('which', 'python3', '-m', 'http.server', '8000')
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout).to.match(/^dev: matched "python3 -m http.server"/)
    expect(json((await cli('which', '--json', 'uvicorn', 'app:app', '--port', '8000')).stdout)).to.include({service: 'api', command: 'uvicorn app:app --port 8000'})
    expect(json((await cli('which', 'uvicorn app:app', '--json')).stdout)).to.include({command: 'uvicorn app:app'})
    // After --, a --json belongs to the command line.
    const passed = await cli('which', '--', 'node', 'server.js', '--json')
    expect(passed.code, passed.stderr).to.equal(0)
    expect(passed.stdout).to.match(/^\w+: /)
    expect((await cli('which')).code).to.equal(2)
  })

  it('help COMMAND works, as --help does', async () => {
    const h = await cli('help', 'list')
    expect(h.code, h.stderr).to.equal(0)
    expect(h.stdout).to.contain('USAGE').and.contain('$ styxy list').and.contain('--here')
    const topic = await cli('help', 'daemon', 'reload')
    expect(topic.stdout).to.contain('$ styxy daemon reload')
  })

  it('an unknown command names the closest one and exits 2', async () => {
    const r = await cli('lsit')
    expect(r.code).to.equal(2)
    expect(r.stderr).to.equal('styxy: "lsit" is not a styxy command; did you mean "styxy list"? (styxy help lists them)\n')
    const nested = await cli('daemon', 'strat')
    expect(nested.stderr).to.contain('did you mean "styxy daemon start"?')
    const far = await cli('frobnicate')
    expect(far.code).to.equal(2)
    expect(far.stderr).to.equal('styxy: "frobnicate" is not a styxy command (styxy help lists them)\n')
  })

  it('check below the floor says such ports are not managed', async () => {
    const r = await cli('check', '1')
    expect(r.stdout).to.contain('not managed: Styxy leases and moves ports from 1024 up; ports below the floor are left alone')
    expect(json((await cli('check', '1', '--json')).stdout)).to.include({managed: false, floor: 1024, port: 1})
    const managed = await listenOn('127.0.0.1', (await d.client.suggest('hub', 1)).ports[0])
    try {
      const m = await cli('check', String(portOf(managed)), '--json')
      expect(json(m.stdout)).to.include({managed: true, free: false})
    } finally {
      await closeServer(managed)
    }
  })

  it("the examples in run --help work when pasted into a shell ($PORT is the child's)", async () => {
    const help = await cli('run', '--help')
    const example = help.stdout.split('\n').map((l) => l.trim()).find((l) => l.startsWith('$ styxy run --service api'))
    expect(example, help.stdout).to.be.a('string')
    // The shell a user pastes into: `styxy` on PATH, and a uvicorn that says which arguments reached it.
    const bin = path.join(d.home, 'bin')
    fs.mkdirSync(bin, {recursive: true})
    fs.writeFileSync(path.join(bin, 'styxy'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, {mode: 0o755})
    fs.writeFileSync(path.join(bin, 'uvicorn'), '#!/bin/sh\necho "uvicorn $*"\n', {mode: 0o755})
    const r = await runCommand('sh', ['-c', example!.slice(2)], {...d.env, PATH: `${bin}:${d.env.PATH}`, PORT: '1234'})
    expect(r.code, r.stderr).to.equal(0)
    const [, port] = r.stdout.match(/^uvicorn app:app --port (\d+)$/m) ?? []
    expect(Number(port), r.stdout).to.be.within(8000, 8099)
  })
})
