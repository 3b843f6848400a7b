import {Args} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {splitCommandLine} from '../src/cli/child-argv.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {inferService, type Inference} from '../src/core/inference.js'

export default class Which extends StyxyCommand {
  static override description = 'The service type Styxy infers from a command line, and why (the command line needs no quotes and no --)'
  static override examples = ['<%= config.bin %> which npm run dev', '<%= config.bin %> which python3 -m http.server 8000', "<%= config.bin %> which 'uvicorn app:app' --json"]
  static override strict = false
  static override args = {command: Args.string({description: 'the command line'})}

  async run(): Promise<Inference & {command: string}> {
    // The command line's own options (-m, --port) are not ours: only leading options and a final --json are.
    const {own, command: words} = splitCommandLine(this.argv)
    await this.parse(Which, own)
    if (words.length === 0) throw new CliError('USAGE', 'give a command line, e.g. styxy which npm run dev', ExitCode.USAGE)
    const command = words.join(' ')
    const r = inferService(command)
    this.say(`${r.service}: ${r.reason}`)
    return {command, ...r}
  }
}
