import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {CliError, StyxyCommand} from '../../src/cli/base.js'
import {ConfigError, loadConfig} from '../../src/config.js'
import {ExitCode} from '../../src/cli/exit-codes.js'
import {resolvePaths} from '../../src/paths.js'

export default class ConfigEdit extends StyxyCommand {
  static override description = 'Open the config file in $VISUAL or $EDITOR, then validate it (the daemon applies a valid file by itself)'
  static override enableJsonFlag = false
  static override examples = ['<%= config.bin %> config edit']

  async run(): Promise<void> {
    await this.parse(ConfigEdit)
    const file = resolvePaths().configFile
    if (!fs.existsSync(file)) {
      fs.mkdirSync(path.dirname(file), {recursive: true})
      fs.writeFileSync(file, JSON.stringify({serviceTypes: {}}, null, 2) + '\n')
    }
    const editor = process.env.VISUAL || process.env.EDITOR || 'vi'
    const r = spawnSync(editor, [file], {stdio: 'inherit', shell: /\s/.test(editor)})
    if (r.status !== 0) throw new CliError('EDITOR_FAILED', `${editor} exited with ${r.status}`, ExitCode.NO)
    try {
      loadConfig(file)
      this.log(`${file}: valid. A running daemon applies it by itself (styxy daemon reload to make sure)`)
    } catch (error) {
      if (error instanceof ConfigError) throw new CliError('INVALID_CONFIG', error.message, ExitCode.NO)
      throw error
    }
  }
}
