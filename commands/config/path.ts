import {StyxyCommand} from '../../src/cli/base.js'
import {resolvePaths} from '../../src/paths.js'

export default class ConfigPath extends StyxyCommand {
  static override description = 'Where the config file is read from'
  static override examples = ['<%= config.bin %> config path']

  async run(): Promise<{file: string}> {
    await this.parse(ConfigPath)
    const file = resolvePaths().configFile
    this.say(file)
    return {file}
  }
}
