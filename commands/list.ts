import {Flags} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import {leaseTable} from '../src/cli/format.js'
import {projectHere} from '../src/servers/servers.js'
import type {Lease} from '../src/protocol/types.js'

export default class List extends StyxyCommand {
  static override description = 'Active leases, with their project and command'
  static override examples = ['<%= config.bin %> list', '<%= config.bin %> list --here', '<%= config.bin %> list -v --service dev', '<%= config.bin %> list --project ../other-worktree --json']
  static override flags = {
    verbose: Flags.boolean({char: 'v', description: 'also kind, since, lease id and asked port; commands in full'}),
    service: Flags.string({char: 's', description: 'only this service type'}),
    project: Flags.string({description: 'only the leases of the project holding this directory (its git worktree; . for this one)', exclusive: ['here']}),
    here: Flags.boolean({description: 'only the leases of this project (the working directory\'s git worktree, or $STYXY_PROJECT)'}),
  }

  async run(): Promise<Lease[]> {
    const {flags} = await this.parse(List)
    const project = flags.here ? projectHere() : flags.project !== undefined ? projectHere(flags.project) : null
    const leases = (await (await this.daemon()).leases(flags.service)).filter((l) => project === null || l.project === project)
    this.say(leases.length === 0 && project !== null ? `No active leases in ${project}.` : leaseTable(leases, flags.verbose))
    return leases
  }
}
