import {Flags} from '@oclif/core'
import {StyxyCommand} from '../src/cli/base.js'
import {startDetached} from '../src/client/ensure-daemon.js'
import {preloadLibraryPath} from '../src/project.js'

export default class ShellInit extends StyxyCommand {
  static override description = 'Print the lines that turn interception on for a whole shell or agent session'
  static override enableJsonFlag = false
  static override examples = ['eval "$(<%= config.bin %> shell-init)"', '<%= config.bin %> shell-init --shell fish | source']
  static override flags = {
    shell: Flags.string({options: ['bash', 'zsh', 'sh', 'fish'], default: 'bash', description: 'syntax of the printed lines'}),
    'no-start': Flags.boolean({description: 'do not start the daemon now'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(ShellInit)
    if (!flags['no-start']) {
      try {
        await startDetached()
      } catch (error) {
        process.stderr.write(`styxy: daemon not started (${(error as Error).message}); programs will bind as if Styxy were absent\n`)
      }
    }
    const lib = preloadLibraryPath()
    const q = `'${lib.replace(/'/g, `'\\''`)}'`
    if (flags.shell === 'fish') {
      this.log(`if not contains -- ${q} (string split : -- "$LD_PRELOAD"); set -gx LD_PRELOAD ${q}(test -n "$LD_PRELOAD"; and echo ":$LD_PRELOAD"); end`)
    } else {
      this.log(`case ":\${LD_PRELOAD:-}:" in *:${q}:*) ;; *) export LD_PRELOAD=${q}"\${LD_PRELOAD:+:$LD_PRELOAD}" ;; esac`)
    }
  }
}
