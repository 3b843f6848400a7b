import {Flags} from '@oclif/core'
import path from 'node:path'
import {StyxyCommand} from '../src/cli/base.js'
import {clientWithDaemon} from '../src/cli/ensure.js'
import type {AllocationResponse} from '../src/protocol/types.js'
import {projectOf} from '../src/shared/project.js'

export default class Allocate extends StyxyCommand {
  static override description = 'Lease a port of a service type before anything binds it'
  static override examples = ['<%= config.bin %> allocate -s dev', '<%= config.bin %> allocate -s api -p 8000 -n backend --json']
  static override flags = {
    service: Flags.string({char: 's', required: true, description: 'service type (styxy config show lists them)'}),
    port: Flags.integer({char: 'p', min: 1, max: 65535, description: 'preferred port (the type\'s ports follow if it is taken)'}),
    name: Flags.string({char: 'n', description: 'a name for the lease'}),
    project: Flags.string({description: 'the project recorded with the lease (default: $STYXY_PROJECT, else the top of this git worktree, else here)'}),
  }

  async run(): Promise<AllocationResponse> {
    const {flags} = await this.parse(Allocate)
    const client = await clientWithDaemon()
    const lease = await client.allocate({service: flags.service, port: flags.port, name: flags.name, project: flags.project === undefined ? projectOf(process.cwd()) : path.resolve(flags.project)})
    this.say(lease.joined
      ? `${lease.port} (joined the existing ${lease.service} holder, lease ${lease.id}: ${lease.service} is single-instance)`
      : `${lease.port} (lease ${lease.id}, ${lease.service})`)
    return lease
  }
}
