import {ApiError, TransportError} from '../client/client.js'
import {ExitCode} from './exit-codes.js'
import {UnsafeStateDirError} from '../shared/state-dir-trust.js'

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

export function classify(err: unknown): Classified {
  if (err instanceof CliError) return {code: err.code, message: err.message, exit: err.exit}
  // Styxy refused to reach a daemon through a directory it cannot trust.
  if (err instanceof UnsafeStateDirError) return {code: err.code, message: err.message, exit: ExitCode.DAEMON_UNREACHABLE}
  if (err instanceof TransportError) return {code: err.code, message: err.message, exit: err.code === 'BAD_RESPONSE' ? ExitCode.INTERNAL : ExitCode.DAEMON_UNREACHABLE}
  if (err instanceof ApiError) return {code: err.code, message: err.message, exit: err.status >= 500 ? ExitCode.INTERNAL : ExitCode.REFUSED}
  const e = err as Error & {oclif?: {exit?: number}; code?: string}
  // oclif's parse errors carry `oclif.exit` (duck-typed: this module must not load oclif, see run-fast.ts).
  if (e?.oclif) {
    const exit = e.oclif?.exit ?? ExitCode.USAGE
    return {code: exit === ExitCode.USAGE ? 'USAGE' : e.code ?? 'ERROR', message: e.message, exit}
  }
  return {code: 'INTERNAL', message: e?.message ?? String(err), exit: ExitCode.INTERNAL}
}

