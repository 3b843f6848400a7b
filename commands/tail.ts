import {Flags} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import {follow, formatEvent, matches} from '../src/cli/tail.js'
import {useColor} from '../src/cli/table.js'
import {EVENT_TYPES} from '../src/protocol/events.js'

export default class Tail extends StyxyCommand {
  static override description = 'Follow the live event stream (leases, moves, instances), reconnecting across daemon restarts'
  static override enableJsonFlag = false
  static override examples = ['<%= config.bin %> tail', '<%= config.bin %> tail --type bind --service dev', '<%= config.bin %> tail --json | jq .']
  static override flags = {
    json: Flags.boolean({description: 'one JSON object per line'}),
    service: Flags.string({char: 's', description: 'only events of this service type'}),
    port: Flags.integer({char: 'p', description: 'only events about this port'}),
    type: Flags.string({char: 't', description: `only this event type or family (${[...new Set(EVENT_TYPES.map((t) => t.split('.')[0]))].join(', ')}, or a full type)`}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Tail)
    const color = !flags.json && useColor()
    let end!: () => void
    const stop = new Promise<void>((resolve) => { end = resolve })
    process.once('SIGINT', () => end())
    process.once('SIGTERM', () => end())
    await follow(this.client, (e) => {
      if (!matches(e, flags)) return
      process.stdout.write((flags.json ? JSON.stringify(e) : formatEvent(e, color)) + '\n')
    }, (line) => { if (!flags.json) process.stderr.write(`${line}\n`) }, stop)
  }
}
