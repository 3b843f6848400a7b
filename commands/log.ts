import {Flags} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {table} from '../src/cli/table.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import type {Reassignment} from '../src/protocol/types.js'
import {sinceToIso} from '../src/core/since.js'

export default class Log extends StyxyCommand {
  static override aliases = ['reassignments']
  static override description = 'The audit trail of moves, newest last'
  static override examples = ['<%= config.bin %> log', '<%= config.bin %> log --since 2026-11-25T10:00:00Z --json', '<%= config.bin %> log --since 1h']
  static override flags = {since: Flags.string({description: 'an ISO time, or a duration back from now (30m, 2h, 1d)'})}

  async run(): Promise<Reassignment[]> {
    const {flags} = await this.parse(Log)
    const since = flags.since === undefined ? undefined : sinceArg(flags.since)
    const trail = await (await this.daemon()).reassignments(since)
    this.say(trail.length ? table(['WHEN', 'PID', 'FROM', 'TO', 'SERVICE', 'COMMAND'], trail.map((r) => [r.at, r.pid, r.from, r.to, r.service, r.command])) : 'No moves recorded.')
    return trail
  }
}

function sinceArg(since: string): string {
  const iso = sinceToIso(since)
  if (iso === null) throw new CliError('USAGE', `--since takes an ISO time or a duration like 30m, got "${since}"`, ExitCode.USAGE)
  return iso
}
