import {StyxyCommand} from '../../src/cli/base.js'
import {probe} from '../../src/client/ensure-daemon.js'
import {ExitCode} from '../../src/cli/exit-codes.js'

export default class DaemonStatus extends StyxyCommand {
  static override description = 'Exit 0 when the daemon answers, 1 when it does not'
  static override examples = ['<%= config.bin %> daemon status', '<%= config.bin %> daemon status --json']

  async run(): Promise<{running: boolean; pid: number | null; version: string | null; socket: string}> {
    await this.parse(DaemonStatus)
    const health = await probe(this.client)
    const socket = this.client.endpoint.socket
    this.say(health ? `running (pid ${health.pid}, version ${health.version}, socket ${socket})` : `not running (socket ${socket})`)
    if (!health) process.exitCode = ExitCode.NO
    return {running: !!health, pid: health?.pid ?? null, version: health?.version ?? null, socket}
  }
}
