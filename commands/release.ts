import {Args} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import type {Lease} from '../src/protocol/types.js'

export default class Release extends StyxyCommand {
  static override description = 'Release a lease, by its id or by its port'
  static override examples = ['<%= config.bin %> release 3001', '<%= config.bin %> release l-3001-3f2a9c1b']
  static override args = {lease: Args.string({required: true, description: 'lease id or port'})}

  async run(): Promise<Lease> {
    const {args} = await this.parse(Release)
    const lease = await (await this.daemon()).release(args.lease)
    this.say(`Released port ${lease.port} (lease ${lease.id}, ${lease.service})`)
    return lease
  }
}
