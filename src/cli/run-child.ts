import {spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import {StyxyClient} from '../client/client.js'
import {startDetached} from '../client/ensure-daemon.js'
import {preloadLibraryPath} from '../project.js'
import type {AllocationResponse} from '../protocol/types.js'

export interface RunOptions {
  argv: string[]
  service?: string
  port?: number
  env?: NodeJS.ProcessEnv
  /** One-line warnings (daemon not startable, library missing): the child runs anyway. */
  warn: (line: string) => void
}

/** The library first, then whatever the user already preloads; never twice. */
export function withPreload(existing: string | undefined, lib: string): string {
  const rest = (existing ?? '').split(/[: ]/).filter((p) => p && p !== lib)
  return [lib, ...rest].join(':')
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Run a command under the interceptor and return its exit code (128 + signal when killed). Styxy never
 * stands in the way: without a daemon or a library the command still runs, with a warning.
 */
export async function runUnderStyxy(opts: RunOptions): Promise<number> {
  const env = {...(opts.env ?? process.env)}
  let client: StyxyClient | undefined
  try {
    await startDetached(env)
    client = StyxyClient.fromEnv(env, 2000)
  } catch (error) {
    opts.warn(`styxy: the daemon could not be started (${(error as Error).message}); running without port coordination`)
  }
  let lease: AllocationResponse | undefined
  if (client && (opts.service || opts.port !== undefined)) {
    const instanceId = `run-${process.pid}`
    lease = await client.allocate({service: opts.service ?? 'dev', port: opts.port, pid: process.pid, instanceId, project: process.cwd()})
    // The child's own binds of this port are its own: they carry the instance id the lease was made for.
    env.PORT = String(lease.port)
    env.STYXY_INSTANCE_ID = instanceId
  }
  const lib = preloadLibraryPath(env)
  if (fs.existsSync(lib)) env.LD_PRELOAD = withPreload(env.LD_PRELOAD, lib)
  else opts.warn(`styxy: interceptor library not found at ${lib} (run make); running without interception`)

  const child = spawn(opts.argv[0], opts.argv.slice(1), {stdio: 'inherit', env})
  const forward = (signal: NodeJS.Signals) => {
    // A terminal's Ctrl-C already reached the child (same foreground process group); a second SIGINT would
    // make many tools skip their graceful shutdown. A SIGINT sent to us alone (kill -INT) is forwarded.
    if (signal === 'SIGINT' && process.stdin.isTTY) return
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
  for (const s of FORWARDED) process.on(s, forward)
  const code = await new Promise<number>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      opts.warn(`styxy: cannot run ${opts.argv[0]}: ${error.code === 'ENOENT' ? 'command not found' : error.message}`)
      resolve(error.code === 'ENOENT' ? 127 : 126)
    })
    child.once('exit', (exitCode, signal) => {
      resolve(signal ? 128 + (os.constants.signals[signal] ?? 0) : exitCode ?? 1)
    })
  })
  for (const s of FORWARDED) process.off(s, forward)
  if (client) {
    // Release now rather than when the reaper notices: the next run may want the same port at once.
    if (lease && !lease.joined) await client.release(lease.id).catch(() => undefined)
    // Only the child's own leases: a full cleanup would read the kernel's tables (milliseconds) on every exit;
    // its descendants' leases go with the reaper's next pass.
    if (child.pid !== undefined) await client.releaseExited(child.pid).catch(() => undefined)
  }
  return code
}
