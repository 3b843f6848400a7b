import {Args} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import {inferService, type Inference} from '../src/core/inference.js'

export default class Which extends StyxyCommand {
  static override description = 'The service type Styxy infers from a command line, and why'
  static override examples = ['<%= config.bin %> which npm run dev', "<%= config.bin %> which 'uvicorn app:app' --json"]
  static override strict = false
  static override args = {command: Args.string({required: true, description: 'the command line'})}

  async run(): Promise<Inference & {command: string}> {
    const {argv} = await this.parse(Which)
    const command = (argv as string[]).join(' ')
    const r = inferService(command)
    this.say(`${r.service}: ${r.reason}`)
    return {command, ...r}
  }
}
