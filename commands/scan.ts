import {Flags} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {holderOf} from '../src/cli/format.js'
import {table} from '../src/cli/table.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import type {PortInfo} from '../src/protocol/types.js'

export default class Scan extends StyxyCommand {
  static override description = 'Which ports of a range are in use, and by whom'
  static override examples = ['<%= config.bin %> scan --service dev', '<%= config.bin %> scan --start 8000 --end 8100 --json']
  static override flags = {
    start: Flags.integer({min: 1, max: 65535, description: 'first port'}),
    end: Flags.integer({min: 1, max: 65535, description: 'last port'}),
    service: Flags.string({char: 's', description: 'the range of this service type'}),
  }

  async run(): Promise<PortInfo[]> {
    const {flags} = await this.parse(Scan)
    let [start, end] = [flags.start, flags.end]
    const client = await this.daemon()
    if (flags.service) {
      const type = (await client.serviceTypes()).find((t) => t.name === flags.service)
      if (!type) throw new CliError('UNKNOWN_SERVICE', `unknown service type "${flags.service}"`, ExitCode.USAGE)
      ;[start, end] = type.range
    }
    if (start === undefined || end === undefined) throw new CliError('USAGE', 'give --service, or both --start and --end', ExitCode.USAGE)
    const used = await client.scan(start, end)
    this.say(used.length === 0 ? `Nothing in use between ${start} and ${end}.` : table(['PORT', 'STATE', 'PID', 'COMMAND', 'LEASE'], used.map((p) => [
      p.port, [p.bound ? 'listening' : '', p.leased ? 'leased' : ''].filter(Boolean).join('+'), p.listeners[0]?.pid, p.listeners[0]?.command, p.lease ? holderOf(p.lease) : '',
    ])))
    return used
  }
}
