import {CliError, StyxyCommand} from '../../src/cli/base.js'
import {startDetached, stopDaemon} from '../../src/client/ensure-daemon.js'
import {ConfigError, loadConfig} from '../../src/config.js'
import {ExitCode} from '../../src/cli/exit-codes.js'
import {resolvePaths} from '../../src/paths.js'

export default class DaemonRestart extends StyxyCommand {
  static override description = 'Stop the daemon if it runs, then start it detached (leases survive: they live in SQLite); a config file that does not validate is refused first, and the running daemon stays'
  static override examples = ['<%= config.bin %> daemon restart']

  async run(): Promise<{pid: number; previousPid: number | null}> {
    await this.parse(DaemonRestart)
    // A new daemon refuses to start on a broken file: stopping the old one first would leave none.
    try {
      loadConfig(resolvePaths().configFile)
    } catch (error) {
      if (error instanceof ConfigError) throw new CliError('INVALID_CONFIG', `${error.message}; the daemon was not restarted`, ExitCode.NO)
      throw error
    }
    const stopped = await stopDaemon()
    const started = await startDetached()
    this.say(`Styxy daemon restarted (pid ${started.pid})`)
    return {pid: started.pid, previousPid: stopped?.pid ?? null}
  }
}
