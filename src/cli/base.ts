import {Command, Errors} from '@oclif/core'
import {ApiError, StyxyClient, TransportError} from '../client/client.js'
import {ExitCode} from './exit-codes.js'

/** A failure with a stable code, shown as one line (or as {"error":{code,message}} with --json). */
export class CliError extends Error {
  constructor(readonly code: string, message: string, readonly exit: number = ExitCode.NO) {
    super(message)
  }
}

interface Classified {
  code: string
  message: string
  exit: number
}

function classify(err: unknown): Classified {
  if (err instanceof CliError) return {code: err.code, message: err.message, exit: err.exit}
  if (err instanceof TransportError) return {code: err.code, message: err.message, exit: err.code === 'BAD_RESPONSE' ? ExitCode.INTERNAL : ExitCode.DAEMON_UNREACHABLE}
  if (err instanceof ApiError) return {code: err.code, message: err.message, exit: err.status >= 500 ? ExitCode.INTERNAL : ExitCode.REFUSED}
  const e = err as Error & {oclif?: {exit?: number}; code?: string}
  if (e instanceof Errors.CLIError || e?.oclif) {
    const exit = e.oclif?.exit ?? ExitCode.USAGE
    return {code: exit === ExitCode.USAGE ? 'USAGE' : e.code ?? 'ERROR', message: e.message, exit}
  }
  return {code: 'INTERNAL', message: e?.message ?? String(err), exit: ExitCode.INTERNAL}
}

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

  protected override async catch(err: Error & {exitCode?: number}): Promise<void> {
    // oclif's own exit (this.exit) travels as an error too: let it through untouched.
    if (err instanceof Errors.ExitError) throw err
    const c = classify(err)
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
