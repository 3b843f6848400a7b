import {Command, Errors} from '@oclif/core'
import {StyxyClient, TransportError} from '../client/client.js'
import {startDetached} from '../client/ensure-daemon.js'
import {UnsafeStateDirError} from '../shared/state-dir-trust.js'
import {classify, CliError} from './errors.js'
import {ExitCode} from './exit-codes.js'

export {CliError}

/**
 * Owns the JSON envelope and the error-to-exit-code map: a command returns its result (the --json output)
 * and throws on failure; this prints one clear line, or one JSON object, and sets the exit code.
 */
export abstract class StyxyCommand extends Command {
  static override enableJsonFlag = true

  private clientCache?: StyxyClient

  protected get client(): StyxyClient {
    return (this.clientCache ??= new StyxyClient())
  }

  private daemonReady?: Promise<StyxyClient>

  /**
   * The client, once a daemon answers: the one rule for commands that need the daemon (docs/cli.md) is that
   * they start it, as `run` does. Only the commands that report on the daemon itself (status, daemon *) do not.
   */
  protected daemon(): Promise<StyxyClient> {
    return (this.daemonReady ??= startDetached().then(() => this.client, (error: unknown) => {
      // A daemon that runs but does not answer keeps its own error (DAEMON_TIMEOUT); one that cannot start says why.
      if (error instanceof TransportError || error instanceof UnsafeStateDirError) throw error
      throw new CliError('DAEMON_START_FAILED', `the daemon is not running and could not be started: ${(error as Error).message}`, ExitCode.DAEMON_UNREACHABLE)
    }))
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<void> {
    // oclif's own exit (this.exit) travels as an error too: let it through untouched.
    if (err instanceof Errors.ExitError) throw err
    // Whatever the parser threw (a bad flag, an out-of-range argument) is a usage error.
    const c = this.parsed ? classify(err) : {code: 'USAGE', message: err.message, exit: ExitCode.USAGE}
    process.exitCode = c.exit
    if (this.jsonEnabled()) {
      this.logJson({error: {code: c.code, message: c.message}})
    } else {
      process.stderr.write(`styxy: ${c.message}\n`)
      if (process.env.STYXY_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`)
    }
  }

  /** Human output only: in --json mode stdout carries nothing but the JSON. */
  protected say(line = ''): void {
    if (!this.jsonEnabled()) this.log(line)
  }
}
