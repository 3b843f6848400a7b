import {Args, Flags} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import type {SuggestResponse} from '../src/protocol/types.js'

export default class Suggest extends StyxyCommand {
  static override description = 'Free ports of a service type (neither leased nor bound)'
  static override examples = ['<%= config.bin %> suggest dev', '<%= config.bin %> suggest api -n 3 --json']
  static override args = {service: Args.string({required: true, description: 'service type'})}
  static override flags = {count: Flags.integer({char: 'n', min: 1, max: 1000, default: 1, description: 'how many'})}

  async run(): Promise<SuggestResponse> {
    const {args, flags} = await this.parse(Suggest)
    const r = await (await this.daemon()).suggest(args.service, flags.count)
    this.say(r.ports.join('\n'))
    return r
  }
}
