import {Flags} from '@oclif/core'
import {StyxyCommand, CliError} from '../../src/cli/base.js'
import {startDetached} from '../../src/client/ensure-daemon.js'
import {ExitCode} from '../../src/cli/exit-codes.js'

export default class DaemonStart extends StyxyCommand {
  static override description = 'Start the Styxy daemon (detached unless --foreground); returns once it answers'
  static override examples = ['<%= config.bin %> daemon start', '<%= config.bin %> daemon start --foreground']
  static override flags = {
    foreground: Flags.boolean({char: 'f', description: 'run in this process, logging to stderr, until SIGTERM or Ctrl-C'}),
  }

  async run(): Promise<{pid: number; alreadyRunning: boolean; version: string}> {
    const {flags} = await this.parse(DaemonStart)
    if (!flags.foreground) {
      const started = await startDetached()
      this.say(started.alreadyRunning ? `Styxy daemon already running (pid ${started.pid})` : `Styxy daemon started (pid ${started.pid})`)
      return started
    }
    const {runForeground} = await import('../../src/daemon/foreground.js')
    const {AlreadyRunningError} = await import('../../src/daemon/state-dir.js')
    try {
      await runForeground()
    } catch (error) {
      if (error instanceof AlreadyRunningError) throw new CliError('ALREADY_RUNNING', error.message, ExitCode.NO)
      throw new CliError('DAEMON_START_FAILED', (error as Error).message, ExitCode.INTERNAL)
    }
    return {pid: process.pid, alreadyRunning: false, version: ''}
  }
}
