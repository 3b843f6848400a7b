import {Args, Flags} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {projectHere} from '../src/servers/servers.js'
import {describeStopped, parseTarget, StopError, stopServer, type Stopped} from '../src/servers/stop.js'

export default class Stop extends StyxyCommand {
  static override description = 'Stop a server of yours by name or port: SIGTERM to its process group, SIGKILL after a grace period'
  static override examples = ['<%= config.bin %> stop 8000', '<%= config.bin %> stop backend', '<%= config.bin %> stop 3000 --grace 10 --json']
  static override args = {server: Args.string({required: true, description: 'a lease name, or a port (the one the server asked for, or the one it has)'})}
  static override flags = {
    grace: Flags.integer({min: 0, max: 600, default: 5, description: 'seconds between SIGTERM and SIGKILL'}),
  }

  async run(): Promise<Stopped> {
    const {args, flags} = await this.parse(Stop)
    const client = await this.daemon()
    try {
      const stopped = await stopServer(client, parseTarget(args.server), {project: projectHere(), projectOnly: false}, flags.grace * 1000)
      this.say(describeStopped(stopped))
      return stopped
    } catch (error) {
      if (error instanceof StopError) throw new CliError(error.code, error.message, ExitCode.REFUSED)
      throw error
    }
  }
}
