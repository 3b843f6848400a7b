import {Flags} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {ApiError} from '../src/client/client.js'
import {openInBrowser} from '../src/cli/open-browser.js'
import type {DashboardLogin} from '../src/protocol/types.js'

export default class Dashboard extends StyxyCommand {
  static override description = 'The live dashboard in your browser: prints a one-time login link (60 s) and opens it where a display is'
  static override examples = ['<%= config.bin %> dashboard', '<%= config.bin %> dashboard --no-open', '<%= config.bin %> dashboard --json']
  static override flags = {
    open: Flags.boolean({default: true, allowNo: true, description: 'open the link in the desktop\'s browser (xdg-open) when there is a display'}),
  }

  async run(): Promise<DashboardLogin & {opened: boolean}> {
    const {flags} = await this.parse(Dashboard)
    let login: DashboardLogin
    try {
      login = await (await this.daemon()).dashboardLogin()
    } catch (error) {
      if (error instanceof ApiError && error.code === 'DASHBOARD_UNAVAILABLE') throw new CliError(error.code, error.message, ExitCode.NO)
      throw error
    }
    const opened = flags.open && openInBrowser(login.url).opened
    this.say(opened ? `Opened the dashboard in your browser. If it did not appear, open this link (it works once, for 60 s):\n  ${login.url}`
      : `Open this link to log in to the dashboard (it works once, for 60 s):\n  ${login.url}`)
    return {...login, opened}
  }
}
