import {Args} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {compatPaths, compatStatus, CompatError, disableCompat, enableCompat, type CompatStatus} from '../src/compat.js'
import {resolvePaths} from '../src/paths.js'
import {ensureToken, prepareStateDir} from '../src/daemon/state-dir.js'

export default class Compat extends StyxyCommand {
  static override description = "Serve the first Styxy's clients: copy the TCP token to ~/.styxy/auth.token (on), remove it (off), or say which (status)"
  static override examples = ['<%= config.bin %> compat on', '<%= config.bin %> compat status --json']
  static override args = {action: Args.string({required: true, options: ['on', 'off', 'status'], description: 'on, off or status'})}

  async run(): Promise<CompatStatus> {
    const {args} = await this.parse(Compat)
    const paths = resolvePaths()
    const cp = compatPaths(paths)
    let status: CompatStatus
    try {
      if (args.action === 'on') {
        prepareStateDir(paths)
        status = enableCompat(cp, ensureToken(paths.token))
      } else if (args.action === 'off') {
        status = disableCompat(cp)
      } else {
        status = compatStatus(cp)
      }
    } catch (error) {
      if (error instanceof CompatError) throw new CliError('COMPAT_REFUSED', error.message, ExitCode.REFUSED)
      throw error
    }
    this.say(`compat ${status.enabled ? 'on' : 'off'}: token copy ${cp.file} ${status.present ? 'present' : 'absent'}`)
    return status
  }
}
