import {Args} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import {portLines} from '../src/cli/format.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import type {PortInfo} from '../src/protocol/types.js'

export default class Check extends StyxyCommand {
  static override description = 'Is a port free? Exit 0 when free, 1 when taken (a listener or a lease), and by whom (starts the daemon if needed)'
  static override examples = ['<%= config.bin %> check 3000 && npm run dev', '<%= config.bin %> check 8000 --json']
  static override args = {port: Args.integer({required: true, min: 1, max: 65535, description: 'the port'})}

  async run(): Promise<PortInfo & {free: boolean}> {
    const {args} = await this.parse(Check)
    const info = await (await this.daemon()).port(args.port)
    const free = !info.bound && !info.leased
    this.say(portLines(info).join('\n'))
    if (!free) process.exitCode = ExitCode.NO
    return {...info, free}
  }
}
