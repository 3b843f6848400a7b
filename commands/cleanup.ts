import {Flags} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import type {CleanupResponse} from '../src/protocol/types.js'

export default class Cleanup extends StyxyCommand {
  static override description = 'Release what is stale now: dead holders, quiet leases, silent instances'
  static override examples = ['<%= config.bin %> cleanup', '<%= config.bin %> cleanup --force']
  static override flags = {force: Flags.boolean({description: 'also release every lease with no listener right now'})}

  async run(): Promise<CleanupResponse> {
    const {flags} = await this.parse(Cleanup)
    const r = await (await this.daemon()).cleanup(flags.force)
    this.say(`Released ${r.released.length} lease(s)${r.released.length ? `: ${r.released.map((l) => l.port).join(', ')}` : ''}; expired ${r.expiredInstances.length} instance(s)`)
    return r
  }
}
