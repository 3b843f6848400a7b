import {Flags} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import {projectHere} from '../src/servers/servers.js'
import type {AllocationResponse} from '../src/protocol/types.js'

export default class Allocate extends StyxyCommand {
  static override description = 'Lease a port of a service type before anything binds it'
  static override examples = ['<%= config.bin %> allocate -s dev', '<%= config.bin %> allocate -s api -p 8000 -n backend --json']
  static override flags = {
    service: Flags.string({char: 's', description: 'service type (styxy config show lists them; default: the type whose range holds --port, else dev)'}),
    port: Flags.integer({char: 'p', min: 1, max: 65535, description: 'preferred port (the type\'s ports follow if it is taken)'}),
    name: Flags.string({char: 'n', description: 'a name for the lease: asked again in the same project, the same lease is the answer'}),
    project: Flags.string({description: 'a directory of the project recorded with the lease (default: here; its git worktree decides)'}),
  }

  async run(): Promise<AllocationResponse> {
    const {flags} = await this.parse(Allocate)
    const client = await this.daemon()
    const lease = await client.allocate({service: flags.service ?? (flags.port === undefined ? 'dev' : undefined), port: flags.port, name: flags.name, project: projectHere(flags.project)})
    this.say(!lease.joined ? `${lease.port} (lease ${lease.id}, ${lease.service})`
      : flags.name !== undefined && lease.name === flags.name ? `${lease.port} (the existing lease ${lease.id} named ${lease.name} in this project, ${lease.service})`
        : `${lease.port} (joined the existing ${lease.service} holder, lease ${lease.id}: ${lease.service} is single-instance)`)
    return lease
  }
}
