import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'
import {isolatedEnv, removeHome, runCli, startDaemon, tempHome} from '../helpers/daemon.js'
import {freePort} from '../helpers/processes.js'
import {UNITS} from '../../src/cli/systemd.js'

type Check = {name: string; level: string; detail: string}
const supervision = (stdout: string) => (JSON.parse(stdout) as {checks: Check[]}).checks.find((c) => c.name === 'supervision')!

describe('styxy daemon install / uninstall', () => {
  it('without a systemd user manager: both say so and change nothing; doctor says the daemon is started on demand', async () => {
    const home = tempHome()
    const env = isolatedEnv(home, await freePort())
    const unitDir = path.join(home, 'config', 'systemd', 'user')
    try {
      delete env.XDG_RUNTIME_DIR
      const unset = await runCli(['daemon', 'install'], env)
      expect(unset.code).to.equal(1)
      expect(unset.stderr).to.contain('no systemd user manager (XDG_RUNTIME_DIR is not set').and.contain('started on demand')
      // A runtime directory without a manager in it (a session that never started one).
      fs.mkdirSync(path.join(home, 'run'))
      const none = await runCli(['daemon', 'install', '--json'], {...env, XDG_RUNTIME_DIR: path.join(home, 'run')})
      expect(JSON.parse(none.stdout).error).to.include({code: 'NO_USER_MANAGER'})
      expect(JSON.parse(none.stdout).error.message).to.contain(`${path.join(home, 'run', 'systemd')} does not exist`)
      expect(fs.existsSync(unitDir), 'no unit written').to.equal(false)
      const un = await runCli(['daemon', 'uninstall'], env)
      expect(un.code).to.equal(1)
      expect(un.stderr).to.contain('no systemd user manager')
      const doctor = await runCli(['doctor', '--json'], env)
      expect(supervision(doctor.stdout)).to.include({level: 'pass'})
      expect(supervision(doctor.stdout).detail).to.match(/^no systemd user manager \(XDG_RUNTIME_DIR is not set.*started on demand/)
    } finally {
      removeHome(home)
    }
  })

  it('with a user manager: writes the units, stops the on-demand daemon, enables the sockets; uninstall undoes it', async () => {
    // The machine has no user manager, so `systemctl` is a stand-in on PATH that records what it is asked and
    // answers as a running manager does. The units themselves are checked by systemd-analyze (systemd-units.test.ts).
    const d = await startDaemon()
    const bin = path.join(d.home, 'bin')
    const calls = path.join(d.home, 'systemctl.log')
    fs.mkdirSync(bin)
    fs.writeFileSync(path.join(bin, 'systemctl'), `#!/bin/sh
echo "$*" >> '${calls}'
case "$*" in
  "--user is-system-running") echo running ;;
  "--user is-active styxy.socket") echo active ;;
esac
`, {mode: 0o755})
    fs.mkdirSync(path.join(d.home, 'run', 'systemd'), {recursive: true})
    const env = {...d.env, PATH: `${bin}:${d.env.PATH}`, XDG_RUNTIME_DIR: path.join(d.home, 'run')}
    const unitDir = path.join(d.home, 'config', 'systemd', 'user')
    try {
      const before = await runCli(['doctor', '--json'], env)
      expect(supervision(before.stdout)).to.include({level: 'warn'})

      const r = await runCli(['daemon', 'install', '--json'], env)
      expect(r.code, r.stderr).to.equal(0)
      expect(JSON.parse(r.stdout)).to.deep.equal({dir: unitDir, units: [UNITS.service, UNITS.socket, UNITS.tcp], stoppedPid: d.pid, installed: true})
      const exit = await new Promise((resolve) => (d.child.exitCode !== null ? resolve(d.child.exitCode) : d.child.once('exit', resolve)))
      expect(exit, 'the on-demand daemon was stopped: the socket unit takes its socket').to.equal(0)
      const service = fs.readFileSync(path.join(unitDir, UNITS.service), 'utf8')
      expect(service).to.contain(`Environment=STYXY_HOME=${d.home}\n`).and.contain(`Environment=STYXY_DAEMON_PORT=${d.port}\n`)
      expect(fs.readFileSync(path.join(unitDir, UNITS.socket), 'utf8')).to.contain(`ListenStream=${path.join(d.home, 'daemon.sock')}\n`)
      expect(fs.readFileSync(path.join(unitDir, UNITS.tcp), 'utf8')).to.contain(`ListenStream=127.0.0.1:${d.port}\n`)
      expect(fs.readFileSync(calls, 'utf8')).to.contain('--user daemon-reload\n--user enable --now styxy.socket styxy-tcp.socket\n')
      const after = await runCli(['doctor', '--json'], env)
      expect(supervision(after.stdout)).to.include({level: 'pass'})
      expect(supervision(after.stdout).detail).to.contain('supervised by systemd')

      fs.writeFileSync(calls, '')
      const u = await runCli(['daemon', 'uninstall', '--json'], env)
      expect(u.code, u.stderr).to.equal(0)
      expect(JSON.parse(u.stdout).removed).to.deep.equal([UNITS.service, UNITS.socket, UNITS.tcp])
      expect(fs.readFileSync(calls, 'utf8')).to.contain('--user disable --now styxy.service styxy.socket styxy-tcp.socket\n--user daemon-reload\n')
      expect(fs.readdirSync(unitDir)).to.deep.equal([])
    } finally {
      await d.stop()
      removeHome(d.home)
    }
  })
})
