import {Flags} from '@oclif/core'
import {CliError, StyxyCommand} from '../src/cli/base.js'
import {splitAtDoubleDash} from '../src/cli/child-argv.js'
import {ExitCode} from '../src/cli/exit-codes.js'
import {runUnderStyxy} from '../src/cli/run-child.js'
import {BACKEND_FLAGS, type BackendFlag} from '../src/cli/backend.js'
import {sanitizeName} from '../src/core/names.js'

export default class Run extends StyxyCommand {
  static override description = 'Run a command with bind() interception: a taken port moves to a free one, and you are told'
  static override enableJsonFlag = false
  static override strict = false
  static override usage = 'run [--name <name>] [--service <type>] [--port <n>] [--project <dir>] [--backend auto|preload|seccomp] [--explain] [--grace <seconds>] -- <command> [args...]'
  static override examples = [
    '<%= config.bin %> run -- npm run dev',
    '<%= config.bin %> run -- python3 -m http.server 8000',
    // Single quotes: $PORT is the child's (the leased port), not the calling shell's.
    `<%= config.bin %> run --service api -- sh -c 'exec uvicorn app:app --port "$PORT"'`,
    '<%= config.bin %> run --explain -- ./my-go-server --port 8080',
  ]
  static override flags = {
    service: Flags.string({char: 's', description: 'lease a port of this type before starting, exported as PORT'}),
    port: Flags.integer({char: 'p', description: 'preferred port for the lease (implies a lease; exported as PORT): if taken, the next free one of its range', min: 1024, max: 65535}),
    backend: Flags.string({char: 'b', description: 'how bind() is caught: LD_PRELOAD, a seccomp supervisor, or auto (seccomp for static and Go binaries; default $STYXY_BACKEND or auto)', options: [...BACKEND_FLAGS]}),
    explain: Flags.boolean({description: 'say which backend was chosen and why before the command starts'}),
    name: Flags.string({char: 'n', description: 'the server\'s name, for its URL http://NAME.localhost:<proxy port>/ (default: the project\'s directory name, SERVICE.PROJECT for non-dev types); exported as STYXY_NAME'}),
    project: Flags.string({description: 'the project the command belongs to (default: the top of this git worktree, else here); exported as STYXY_PROJECT'}),
    grace: Flags.string({description: 'seconds from passing SIGTERM/SIGINT/SIGHUP on to the command\'s process group until SIGKILL for what is left (default $STYXY_RUN_GRACE, else 5)'}),
  }

  async run(): Promise<void> {
    const {own, child} = splitAtDoubleDash(process.argv.slice(process.argv.indexOf('run') + 1))
    if (child.length === 0) throw new CliError('USAGE', 'nothing to run: put the command after --, e.g. styxy run -- npm run dev', ExitCode.USAGE)
    const {flags} = await this.parse(Run, own)
    const grace = flags.grace === undefined ? undefined : Number(flags.grace)
    if (grace !== undefined && !(Number.isFinite(grace) && grace >= 0)) throw new CliError('USAGE', `--grace takes a number of seconds, not "${flags.grace}"`, ExitCode.USAGE)
    if (flags.name !== undefined && sanitizeName(flags.name) !== flags.name) {
      const better = sanitizeName(flags.name)
      throw new CliError('USAGE', `--name "${flags.name}" is not a host name: lower-case letters, digits, '-' and '.' only${better ? `, e.g. ${better}` : ''}`, ExitCode.USAGE)
    }
    const code = await runUnderStyxy({argv: child, service: flags.service, port: flags.port, name: flags.name, backend: flags.backend as BackendFlag | undefined, explain: flags.explain, project: flags.project, grace, warn: (l) => process.stderr.write(`${l}\n`)})
    this.exit(code)
  }
}
