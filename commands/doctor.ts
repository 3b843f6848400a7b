import {StyxyCommand} from '../src/cli/base.js'
import {runChecks, worst, type Check} from '../src/cli/doctor.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {paint, useColor} from '../src/cli/table.js'

export default class Doctor extends StyxyCommand {
  static override description = 'Check the daemon, permissions, the interceptor library and the port ranges; exit 0 all pass, 1 a warning, 6 a failure'
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json']

  async run(): Promise<{status: string; checks: Check[]}> {
    await this.parse(Doctor)
    const checks = await runChecks()
    const color = useColor()
    const mark = {pass: paint(32, 'PASS', color), warn: paint(33, 'WARN', color), fail: paint(31, 'FAIL', color)}
    for (const c of checks) this.say(`${mark[c.level]}  ${c.name}: ${c.detail}${c.hint && c.level !== 'pass' ? `\n      hint: ${c.hint}` : ''}`)
    const status = worst(checks)
    process.exitCode = status === 'fail' ? ExitCode.CHECK_FAILED : status === 'warn' ? ExitCode.NO : ExitCode.OK
    return {status, checks}
  }
}
