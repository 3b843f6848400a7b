import {Flags} from '@oclif/core'
import {StyxyCommand} from '../../src/cli/base.js'
import {install, unitDir, unitsFor} from '../../src/cli/supervision.js'

export default class DaemonInstall extends StyxyCommand {
  static override description = 'Put the daemon under the systemd user manager: socket units (the Unix socket and the TCP port) that start it on the first connection, and a service that restarts it after a crash'
  static override examples = ['<%= config.bin %> daemon install', '<%= config.bin %> daemon install --print']
  static override flags = {
    print: Flags.boolean({description: 'print the units instead of installing them'}),
  }

  async run(): Promise<{dir: string; units: string[]; stoppedPid: number | null; installed: boolean}> {
    const {flags} = await this.parse(DaemonInstall)
    if (flags.print) {
      const files = unitsFor()
      for (const f of files) this.say(`# ${unitDir()}/${f.name}\n${f.text}`)
      return {dir: unitDir(), units: files.map((f) => f.name), stoppedPid: null, installed: false}
    }
    const done = await install()
    if (done.stoppedPid !== null) this.say(`stopped the daemon started on demand (pid ${done.stoppedPid})`)
    this.say(`installed ${done.units.join(', ')} in ${done.dir}; the daemon starts on the first connection and is restarted after a crash`)
    return {...done, installed: true}
  }
}
