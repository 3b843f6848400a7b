import {StyxyCommand} from '../../src/cli/base.js'
import {stopDaemon} from '../../src/client/ensure-daemon.js'

export default class DaemonStop extends StyxyCommand {
  static override description = 'Stop the Styxy daemon and wait until it is gone'
  static override examples = ['<%= config.bin %> daemon stop']

  async run(): Promise<{stopped: boolean; pid: number | null}> {
    await this.parse(DaemonStop)
    const stopped = await stopDaemon()
    this.say(stopped ? `Styxy daemon stopped (pid ${stopped.pid})` : 'Styxy daemon was not running')
    return {stopped: stopped !== null, pid: stopped?.pid ?? null}
  }
}
