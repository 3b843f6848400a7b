import {Args} from '@oclif/core'
import path from 'node:path'
import {CliError, StyxyCommand} from '../../src/cli/base.js'
import {ConfigError, loadConfig} from '../../src/config.js'
import {ExitCode} from '../../src/cli/exit-codes.js'
import {resolvePaths} from '../../src/paths.js'

export default class ConfigValidate extends StyxyCommand {
  static override description = 'Check a config file; names the exact problem and exits non-zero when it is broken'
  static override examples = ['<%= config.bin %> config validate', '<%= config.bin %> config validate ./styxy.json']
  static override args = {file: Args.string({description: 'the file (default: the one the daemon reads)'})}

  async run(): Promise<{file: string; valid: true; types: number}> {
    const {args} = await this.parse(ConfigValidate)
    const file = args.file ? path.resolve(args.file) : resolvePaths().configFile
    try {
      const config = loadConfig(file)
      this.say(`${file}: ${config.exists ? 'valid' : 'absent (the built-in types apply)'}, ${config.serviceTypes.length} service types`)
      return {file, valid: true, types: config.serviceTypes.length}
    } catch (error) {
      if (error instanceof ConfigError) throw new CliError('INVALID_CONFIG', error.message, ExitCode.NO)
      throw error
    }
  }
}
