import {spawn, type ChildProcess} from 'node:child_process'
import type {Socket} from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import {StyxyClient, TransportError} from '../client/client.js'
import {ensureRunning} from '../client/ensure-daemon.js'
import {preloadLibraryPath, supervisorPath} from '../project.js'
import {projectOf} from '../shared/project.js'
import type {AllocationResponse} from '../protocol/types.js'
import {BACKEND_FLAGS, chooseBackend, type Backend, type BackendFlag} from './backend.js'

export interface RunOptions {
  argv: string[]
  service?: string
  port?: number
  env?: NodeJS.ProcessEnv
  /** Default: $STYXY_BACKEND, else auto. */
  backend?: BackendFlag
  /** Say which backend was chosen and why, before the command starts. */
  explain?: boolean
  /** One-line warnings (daemon not startable, library missing): the child runs anyway. */
  warn: (line: string) => void
}

/** The library first, then whatever the user already preloads; never twice. */
export function withPreload(existing: string | undefined, lib: string): string {
  return [lib, ...withoutPreload(existing, lib)].join(':')
}

function withoutPreload(existing: string | undefined, lib: string): string[] {
  return (existing ?? '').split(/[: ]/).filter((p) => p && p !== lib)
}

/** The backend for this command and the line --explain prints. A missing supervisor means preload. */
export function pickBackend(argv: string[], flag: BackendFlag, env: NodeJS.ProcessEnv): {backend: Backend; why: string} {
  const choice = flag === 'auto' ? chooseBackend(argv, env) : {backend: flag, why: 'asked for (--backend or $STYXY_BACKEND)'}
  if (choice.backend === 'seccomp' && !fs.existsSync(supervisorPath(env))) {
    return {backend: 'preload', why: `${choice.why}; but the supervisor is missing at ${supervisorPath(env)} (run make), so LD_PRELOAD`}
  }
  return choice
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Run a command under the interceptor and return its exit code (128 + signal when killed). Styxy never
 * stands in the way: without a daemon or a library the command still runs, with a warning.
 */
export async function runUnderStyxy(opts: RunOptions): Promise<number> {
  const env = {...(opts.env ?? process.env)}
  let client: StyxyClient | undefined
  // The probe's connection, kept for the exit watch.
  let probe: Socket | undefined
  try {
    probe = await ensureRunning(env)
    client = StyxyClient.fromEnv(env, 2000)
  } catch (error) {
    opts.warn(`styxy: the daemon could not be started (${(error as Error).message}); running without port coordination`)
  }
  let lease: AllocationResponse | undefined
  if (client && (opts.service || opts.port !== undefined)) {
    const instanceId = `run-${process.pid}`
    try {
      // Without --service the daemon takes the type whose range holds --port, and a port near it if it is taken.
      lease = await client.allocate({service: opts.service, port: opts.port, pid: process.pid, instanceId, project: projectOf(process.cwd(), env)})
    } catch (error) {
      // A refusal (an unknown service type, a port that cannot be handed out) is the user's to fix: say it and
      // stop. A daemon that accepts but does not answer (stopped, hung) must not keep the command from running.
      if (!(error instanceof TransportError)) {
        probe?.destroy()
        throw error
      }
      opts.warn(`styxy: the daemon did not answer (${error.message}); running without port coordination`)
      client = undefined
    }
    if (lease) {
      // The child's own binds of this port are its own: they carry the instance id the lease was made for.
      env.PORT = String(lease.port)
      env.STYXY_INSTANCE_ID = instanceId
    }
  }
  const lib = preloadLibraryPath(env)
  const fromEnv = env.STYXY_BACKEND || undefined
  if (fromEnv && !BACKEND_FLAGS.includes(fromEnv as BackendFlag)) opts.warn(`styxy: STYXY_BACKEND=${fromEnv} is not one of ${BACKEND_FLAGS.join(', ')}; using auto`)
  const flag = opts.backend ?? (fromEnv && BACKEND_FLAGS.includes(fromEnv as BackendFlag) ? fromEnv as BackendFlag : 'auto')
  const {backend, why} = pickBackend(opts.argv, flag, env)
  if (opts.explain) opts.warn(`styxy: backend ${backend}: ${why}`)
  const hasLib = fs.existsSync(lib)
  if (!hasLib) opts.warn(`styxy: interceptor library not found at ${lib} (run make); running without interception`)

  let child: ChildProcess
  // The pid whose leases are released at the end: the command itself, which under seccomp is the
  // supervisor's child (the supervisor reports it on fd 3).
  let commandPid: Promise<number | undefined>
  if (backend === 'seccomp') {
    // The supervisor preloads the library itself only if the kernel refuses seccomp; loaded on top of the
    // filter it would ask the daemon twice for one bind.
    const rest = withoutPreload(env.LD_PRELOAD, lib)
    if (rest.length) env.LD_PRELOAD = rest.join(':')
    else delete env.LD_PRELOAD
    const args = [...(hasLib ? ['--preload', lib] : []), '--report-fd', '3', '--', ...opts.argv]
    child = spawn(supervisorPath(env), args, {stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env})
    const report = child.stdio[3] as NodeJS.ReadableStream
    commandPid = new Promise((resolve) => {
      let text = ''
      report.on('data', (c: Buffer) => { text += c })
      report.on('end', () => resolve(Number.parseInt(text, 10) || undefined))
      report.on('error', () => resolve(undefined))
    })
  } else {
    if (hasLib) env.LD_PRELOAD = withPreload(env.LD_PRELOAD, lib)
    child = spawn(opts.argv[0], opts.argv.slice(1), {stdio: 'inherit', env})
    commandPid = Promise.resolve(child.pid)
  }
  // The daemon releases the command's leases (and the run's own) when this request's connection ends: at our
  // exit, or when we are killed. Nothing to wait for at exit, where a request of our own would cost milliseconds.
  const ownLease = lease && !lease.joined ? lease.id : undefined
  const watcher = client
  const watch = commandPid.then((pid) => {
    if (watcher && pid !== undefined) return watcher.watchExit({pid, leaseId: ownLease}, probe)
    probe?.destroy()
    return undefined
  })
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
  const held = await watch
  if (held && !held.lost) {
    await held.end()
  } else if (client) {
    // No watch (the socket was unreachable, or the daemon restarted meanwhile): release now rather than when the
    // reaper notices, since the next run may want the same port at once.
    if (ownLease) await client.release(ownLease).catch(() => undefined)
    // Only the child's own leases: a full cleanup would read the kernel's tables (milliseconds) on every exit;
    // its descendants' leases go with the reaper's next pass.
    const pid = await commandPid
    if (pid !== undefined) await client.releaseExited(pid).catch(() => undefined)
  }
  return code
}
