import {Flags} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import {leaseTable} from '../src/cli/format.js'
import type {Lease} from '../src/protocol/types.js'

export default class List extends StyxyCommand {
  static override description = 'Active leases'
  static override examples = ['<%= config.bin %> list', '<%= config.bin %> list -v --service dev', '<%= config.bin %> list --json']
  static override flags = {
    verbose: Flags.boolean({char: 'v', description: 'also lease id, requested port, project and command'}),
    service: Flags.string({char: 's', description: 'only this service type'}),
  }

  async run(): Promise<Lease[]> {
    const {flags} = await this.parse(List)
    const leases = await this.client.leases(flags.service)
    this.say(leaseTable(leases, flags.verbose))
    return leases
  }
}
