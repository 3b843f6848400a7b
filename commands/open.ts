import {Args} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {openInBrowser, type Opened} from '../src/cli/open-browser.js'
import {UnknownNameError, urlOfName} from '../src/servers/urls.js'

export default class Open extends StyxyCommand {
  static override description = 'Open a server\'s URL in the browser by its name (without a display, print it and say why)'
  static override examples = ['<%= config.bin %> open myapp', '<%= config.bin %> open api.myapp']
  static override args = {name: Args.string({required: true, description: 'the server\'s name (styxy list shows them)'})}

  async run(): Promise<Opened & {name: string}> {
    const {args} = await this.parse(Open)
    let url: string
    try {
      url = (await urlOfName(await this.daemon(), args.name)).url
    } catch (error) {
      if (error instanceof UnknownNameError) throw new CliError('NOT_FOUND', error.message, ExitCode.NO)
      throw error
    }
    const opened = openInBrowser(url)
    this.say(opened.opened ? `opened ${url}` : `${url}\n(not opened: ${opened.reason})`)
    return {name: args.name, ...opened}
  }
}
