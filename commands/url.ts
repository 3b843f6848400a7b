import {Args} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {UnknownNameError, urlOfName} from '../src/servers/urls.js'

export default class Url extends StyxyCommand {
  static override description = 'The URL of a server by its name: http://NAME.localhost:<proxy port>/, wherever the server moves'
  static override examples = ['<%= config.bin %> url myapp', '<%= config.bin %> url api.myapp --json', 'curl "$(<%= config.bin %> url api.myapp)health"']
  static override args = {name: Args.string({required: true, description: 'the server\'s name (styxy list shows them)'})}

  async run(): Promise<{name: string; url: string; port: number}> {
    const {args} = await this.parse(Url)
    try {
      const {url, lease} = await urlOfName(await this.daemon(), args.name)
      this.say(url)
      return {name: args.name, url, port: lease.port}
    } catch (error) {
      if (error instanceof UnknownNameError) throw new CliError('NOT_FOUND', error.message, ExitCode.NO)
      throw error
    }
  }
}
