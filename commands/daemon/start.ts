import fs from 'node:fs'
import {Flags} from '@oclif/core'
import {StyxyCommand, CliError} from '../../src/cli/base.js'
import {startDetached} from '../../src/client/ensure-daemon.js'
import {daemonPort} from '../../src/paths.js'
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
    // The daemon never runs under the interceptor: children do not inherit it, and if this process was
    // started with it loaded, STYXY_DISABLE (read by the library at each bind) makes it pass our binds through.
    delete process.env.LD_PRELOAD
    process.env.STYXY_DISABLE = '1'
    const {startDaemon} = await import('../../src/daemon/server.js')
    const {AlreadyRunningError} = await import('../../src/daemon/state-dir.js')
    let daemon
    try {
      daemon = await startDaemon({tcpPort: daemonPort()})
    } catch (error) {
      if (error instanceof AlreadyRunningError) throw new CliError('ALREADY_RUNNING', error.message, ExitCode.NO)
      throw new CliError('DAEMON_START_FAILED', (error as Error).message, ExitCode.INTERNAL)
    }
    const readyFd = Number(process.env.STYXY_READY_FD)
    if (Number.isInteger(readyFd) && readyFd > 2) {
      try {
        fs.writeSync(readyFd, JSON.stringify({pid: process.pid, port: daemon.tcpPort, socket: daemon.paths.socket}) + '\n')
        fs.closeSync(readyFd)
      } catch {
        // The starter went away; nothing to tell.
      }
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => void daemon.stop(signal).then(resolve)
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
      process.once('SIGHUP', () => stop('SIGHUP'))
    })
    return {pid: process.pid, alreadyRunning: false, version: ''}
  }
}
