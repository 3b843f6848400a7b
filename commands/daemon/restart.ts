import {StyxyCommand} from '../../src/cli/base.js'
import {startDetached, stopDaemon} from '../../src/client/ensure-daemon.js'

export default class DaemonRestart extends StyxyCommand {
  static override description = 'Stop the daemon if it runs, then start it detached (leases survive: they live in SQLite)'
  static override examples = ['<%= config.bin %> daemon restart']

  async run(): Promise<{pid: number; previousPid: number | null}> {
    await this.parse(DaemonRestart)
    const stopped = await stopDaemon()
    const started = await startDetached()
    this.say(`Styxy daemon restarted (pid ${started.pid})`)
    return {pid: started.pid, previousPid: stopped?.pid ?? null}
  }
}
