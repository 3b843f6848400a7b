import {Flags} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {splitAtDoubleDash} from '../src/cli/child-argv.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {runUnderStyxy} from '../src/cli/run-child.js'

export default class Run extends StyxyCommand {
  static override description = 'Run a command with bind() interception: a taken port moves to a free one, and you are told'
  static override enableJsonFlag = false
  static override strict = false
  static override usage = 'run [--service <type>] [--port <n>] -- <command> [args...]'
  static override examples = [
    '<%= config.bin %> run -- npm run dev',
    '<%= config.bin %> run -- python3 -m http.server 8000',
    '<%= config.bin %> run --service api -- uvicorn app:app --port $PORT',
  ]
  static override flags = {
    service: Flags.string({char: 's', description: 'lease a port of this type before starting, exported as PORT'}),
    port: Flags.integer({char: 'p', description: 'preferred port for the lease (implies a lease; exported as PORT)', min: 1024, max: 65535}),
  }

  async run(): Promise<void> {
    const {own, child} = splitAtDoubleDash(process.argv.slice(process.argv.indexOf('run') + 1))
    if (child.length === 0) throw new CliError('USAGE', 'nothing to run: put the command after --, e.g. styxy run -- npm run dev', ExitCode.USAGE)
    const {flags} = await this.parse(Run, own)
    const code = await runUnderStyxy({argv: child, service: flags.service, port: flags.port, warn: (l) => process.stderr.write(`${l}\n`)})
    this.exit(code)
  }
}
