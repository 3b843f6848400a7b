import {StyxyCommand} from '../../src/cli/base.js'
import {uninstall} from '../../src/cli/supervision.js'

export default class DaemonUninstall extends StyxyCommand {
  static override description = 'Stop and remove the systemd user units of `daemon install`; the daemon is started on demand again'
  static override examples = ['<%= config.bin %> daemon uninstall']

  async run(): Promise<{dir: string; removed: string[]}> {
    await this.parse(DaemonUninstall)
    const done = uninstall()
    this.say(done.removed.length ? `removed ${done.removed.join(', ')} from ${done.dir}; the daemon is started on demand again` : `no Styxy units in ${done.dir}`)
    return done
  }
}
