import {Flags} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {follow, formatEvent, matches, unknownTypeFilter} from '../src/cli/tail.js'
import {useColor} from '../src/cli/table.js'
import {EVENT_TYPES} from '../src/protocol/events.js'

export default class Tail extends StyxyCommand {
  static override description = 'Follow the live event stream (leases, moves, instances, config), reconnecting across daemon restarts'
  static override enableJsonFlag = false
  static override examples = ['<%= config.bin %> tail', '<%= config.bin %> tail --type bind --service dev', '<%= config.bin %> tail --json | jq .']
  static override flags = {
    json: Flags.boolean({description: 'one JSON object per line'}),
    service: Flags.string({char: 's', description: 'only events of this service type'}),
    port: Flags.integer({char: 'p', min: 1, max: 65535, description: 'only events about this port'}),
    type: Flags.string({char: 't', description: `only this event type or family (${[...new Set(EVENT_TYPES.map((t) => t.split('.')[0]))].join(', ')}, or a full type)`}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Tail)
    // A filter nothing can match would wait forever in silence: refused up front.
    const badType = flags.type === undefined ? null : unknownTypeFilter(flags.type)
    if (badType) throw new CliError('USAGE', badType, ExitCode.USAGE)
    const client = await this.daemon()
    if (flags.service !== undefined && !(await client.serviceTypes()).some((t) => t.name === flags.service)) {
      throw new CliError('UNKNOWN_SERVICE', `unknown service type "${flags.service}" (styxy config show lists them)`, ExitCode.REFUSED)
    }
    const color = !flags.json && useColor()
    let end!: () => void
    const stop = new Promise<void>((resolve) => { end = resolve })
    process.once('SIGINT', () => end())
    process.once('SIGTERM', () => end())
    await follow(client, (e) => {
      if (!matches(e, flags)) return
      process.stdout.write((flags.json ? JSON.stringify(e) : formatEvent(e, color)) + '\n')
    }, (line) => { if (!flags.json) process.stderr.write(`${line}\n`) }, stop)
  }
}
