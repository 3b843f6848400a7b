import {StyxyCommand} from '../../src/cli/base.js'
import type {ConfigReload} from '../../src/protocol/types.js'

export default class DaemonReload extends StyxyCommand {
  static override description = 'Read the config file again (as SIGHUP does; the daemon also watches it): a file that does not validate is refused, naming the field, and the daemon keeps its types'
  static override examples = ['<%= config.bin %> daemon reload', '<%= config.bin %> daemon reload --json']

  async run(): Promise<ConfigReload> {
    await this.parse(DaemonReload)
    const r = await (await this.daemon()).reloadConfig()
    this.say(`${r.file}: ${r.exists ? '' : 'absent, '}${r.serviceTypes} service types${r.changed ? ', now in use' : ', unchanged'}`)
    return r
  }
}
