import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {renderUnits, UNITS, type UnitInputs} from '../../src/cli/systemd.js'
import {DAEMON_ENTRY, DAEMON_NODE_FLAGS} from '../../src/client/ensure-daemon.js'
import {removeHome, tempHome} from '../helpers/daemon.js'

const inputs = (over: Partial<UnitInputs> = {}): UnitInputs => ({
  node: process.execPath, nodeFlags: DAEMON_NODE_FLAGS, entry: DAEMON_ENTRY,
  socket: '/home/u/.local/state/styxy/daemon.sock', port: 9876, log: '/home/u/.local/state/styxy/daemon.log',
  environment: {STYXY_HOME: '/home/u/.local/state/styxy', STYXY_DAEMON_PORT: '9876'}, ...over,
})

const unit = (files: {name: string; text: string}[], name: string) => files.find((f) => f.name === name)?.text ?? ''

describe('the systemd user units of `daemon install`', () => {
  it('a notify service restarted on failure, started by a Unix socket unit and a loopback TCP socket unit', () => {
    const files = renderUnits(inputs())
    expect(files.map((f) => f.name)).to.deep.equal([UNITS.service, UNITS.socket, UNITS.tcp])
    const service = unit(files, UNITS.service)
    expect(service).to.contain('Type=notify\n').and.contain('Restart=on-failure\n')
    expect(service).to.contain(`ExecStart=${process.execPath} ${DAEMON_NODE_FLAGS.join(' ')} ${DAEMON_ENTRY}\n`)
    expect(service).to.contain('Sockets=styxy.socket styxy-tcp.socket\n').and.contain('Requires=styxy.socket\n')
    expect(service).to.contain('Environment=STYXY_DAEMON_PORT=9876\nEnvironment=STYXY_HOME=/home/u/.local/state/styxy\n')
    expect(service).to.contain('StandardError=append:/home/u/.local/state/styxy/daemon.log\n')
    expect(unit(files, UNITS.socket)).to.contain('ListenStream=/home/u/.local/state/styxy/daemon.sock\nSocketMode=0600\n')
    expect(unit(files, UNITS.socket)).to.contain('WantedBy=sockets.target')
    expect(unit(files, UNITS.tcp)).to.contain('ListenStream=127.0.0.1:9876\n')
  })

  it('quotes what systemd would otherwise split or expand: spaces, quotes, % specifiers, $ variables', () => {
    const files = renderUnits(inputs({
      node: '/opt/my node/bin/node', entry: '/srv/100%/dist/src/daemon/main.js', socket: '/run/a%b/daemon.sock',
      environment: {STYXY_HOME: '/home/u/my "state"', STYXY_CONFIG: '/home/u/$HOME/c.json'},
    }))
    const service = unit(files, UNITS.service)
    expect(service).to.contain('ExecStart="/opt/my node/bin/node" ')
    expect(service).to.contain(' /srv/100%%/dist/src/daemon/main.js\n')
    // Environment= expands specifiers but not variables.
    expect(service).to.contain('Environment=STYXY_CONFIG=/home/u/$HOME/c.json\n')
    expect(service).to.contain('Environment="STYXY_HOME=/home/u/my \\"state\\""\n')
    expect(unit(files, UNITS.socket)).to.contain('ListenStream=/run/a%%b/daemon.sock\n')
  })

  it('without a fixed TCP port, no TCP socket unit: the daemon binds one itself', () => {
    const files = renderUnits(inputs({port: null}))
    expect(files.map((f) => f.name)).to.deep.equal([UNITS.service, UNITS.socket])
    expect(unit(files, UNITS.service)).to.contain('Sockets=styxy.socket\n')
  })

  it('systemd itself finds nothing wrong with them (systemd-analyze verify, where it is installed)', function () {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) this.skip()
    const dir = tempHome('styxy-units-')
    try {
      const files = renderUnits(inputs({socket: path.join(dir, 'daemon.sock'), log: path.join(dir, 'daemon.log')}))
      for (const f of files) fs.writeFileSync(path.join(dir, f.name), f.text)
      const r = spawnSync('systemd-analyze', ['verify', ...files.map((f) => path.join(dir, f.name))], {encoding: 'utf8'})
      // Unknown keys and bad values are only warnings to systemd: any line at all is a defect here.
      expect(r.stderr + r.stdout).to.equal('')
      expect(r.status).to.equal(0)
    } finally {
      removeHome(dir)
    }
  })
})
