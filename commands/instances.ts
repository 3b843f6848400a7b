import {StyxyCommand} from '../src/cli/base.js'
import {table} from '../src/cli/table.js'
import type {Instance} from '../src/protocol/types.js'

export default class Instances extends StyxyCommand {
  static override description = 'Registered instances and their last heartbeat'
  static override examples = ['<%= config.bin %> instances', '<%= config.bin %> instances --json']

  async run(): Promise<Instance[]> {
    await this.parse(Instances)
    const list = await (await this.daemon()).instances()
    this.say(list.length ? table(['ID', 'PID', 'NAME', 'PROJECT', 'LAST HEARTBEAT'], list.map((i) => [i.id, i.pid, i.name, i.project, i.lastHeartbeatAt])) : 'No registered instances.')
    return list
  }
}
