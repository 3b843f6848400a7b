import {StyxyCommand} from '../../src/cli/base.js'
import {table} from '../../src/cli/table.js'
import {loadConfig} from '../../src/config.js'
import {resolvePaths} from '../../src/paths.js'
import type {ServiceType} from '../../src/protocol/types.js'

export default class ConfigShow extends StyxyCommand {
  static override description = 'The merged service types, and where each came from (built in, or your config file)'
  static override examples = ['<%= config.bin %> config show', '<%= config.bin %> config show --json']

  async run(): Promise<{file: string; exists: boolean; serviceTypes: ServiceType[]}> {
    await this.parse(ConfigShow)
    const config = loadConfig(resolvePaths().configFile)
    this.say(`config file: ${config.file}${config.exists ? '' : ' (none: built-in types only)'}\n`)
    this.say(table(['TYPE', 'RANGE', 'PREFERRED', 'SINGLE', 'FROM'], config.serviceTypes.map((t) => [
      t.name, `${t.range[0]}-${t.range[1]}`, t.preferredPorts.join(','), t.singleton ? 'yes' : '', t.source,
    ])))
    return config
  }
}
