import {spawn, type ChildProcess} from 'node:child_process'
import type {Socket} from 'node:net'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {StyxyClient, TransportError} from '../client/client.js'
import {ensureRunning} from '../client/ensure-daemon.js'
import {preloadLibraryPath, supervisorPath} from '../project.js'
import {projectOf} from '../shared/project.js'
import type {AllocationResponse} from '../protocol/types.js'
import {BACKEND_FLAGS, chooseBackend, setIdFacts, type Backend, type BackendFlag, type Choice} from './backend.js'
import {describeSetId, setIdEffect, type SetIdEffect} from '../core/setid.js'
import {CommandProcesses, graceMs, inTerminalForeground} from './process-group.js'

export interface RunOptions {
  argv: string[]
  service?: string
  port?: number
  env?: NodeJS.ProcessEnv
  /** Default: $STYXY_BACKEND, else auto. */
  backend?: BackendFlag
  /** Say which backend was chosen and why, before the command starts. */
  explain?: boolean
  /** `--project DIR`: the command's project, whatever its working directory (exported as STYXY_PROJECT). */
  project?: string
  /** `--name NAME`: the name of the command's servers (exported as STYXY_NAME). */
  name?: string
  /** Seconds between passing a stop signal on and SIGKILL for what is left (default $STYXY_RUN_GRACE, else 5). */
  grace?: number
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
export function pickBackend(argv: string[], flag: BackendFlag, env: NodeJS.ProcessEnv): Choice {
  const found = chooseBackend(argv, env)
  const choice = flag === 'auto' ? found : {backend: flag, why: 'asked for (--backend or $STYXY_BACKEND)', program: found.program}
  if (choice.backend === 'seccomp' && !fs.existsSync(supervisorPath(env))) {
    return {backend: 'preload', why: `${choice.why}; but the supervisor is missing at ${supervisorPath(env)} (run make), so LD_PRELOAD`, program: choice.program}
  }
  return choice
}

/** What the kernel does with a set-id program under this backend (core/setid.ts); null for a plain one. */
function setIdLine(program: string, backend: Backend): {line: string; changes: boolean} | null {
  let effect: SetIdEffect
  try {
    effect = setIdEffect(setIdFacts(program))
  } catch {
    return null
  }
  const line = describeSetId(program, effect, backend, process.getuid?.() ?? -1)
  return line ? {line, changes: effect.kind === 'changes'} : null
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Run a command under the interceptor and return its exit code (128 + signal when killed). Styxy never
 * stands in the way: without a daemon or a library the command still runs, with a warning.
 */
export async function runUnderStyxy(opts: RunOptions): Promise<number> {
  const env = {...(opts.env ?? process.env)}
  // Absolute, so the command and everything it starts name the same project from any directory.
  if (opts.project !== undefined) env.STYXY_PROJECT = path.resolve(opts.project)
  // Read by the interceptor (and the seccomp supervisor) at each bind, so every server the command starts is named.
  if (opts.name !== undefined) env.STYXY_NAME = opts.name
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
      lease = await client.allocate({service: opts.service, port: opts.port, pid: process.pid, instanceId, project: projectOf(process.cwd(), env), name: opts.name})
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
  const {backend, why, program} = pickBackend(opts.argv, flag, env)
  if (opts.explain) opts.warn(`styxy: backend ${backend}: ${why}`)
  const setid = program ? setIdLine(program, backend) : null
  if (setid && (opts.explain || setid.changes)) opts.warn(`styxy: ${setid.line}`)
  const hasLib = fs.existsSync(lib)
  if (!hasLib) opts.warn(`styxy: interceptor library not found at ${lib} (run make); running without interception`)

  let child: ChildProcess
  // The pid whose leases are released at the end: the command itself, which under seccomp is the
  // supervisor's child (the supervisor reports it on fd 3).
  let commandPid: Promise<number | undefined>
  // In a terminal's foreground the command stays in our process group; otherwise it gets one of its own
  // (process-group.ts says why).
  const interactive = inTerminalForeground()
  if (backend === 'seccomp') {
    // The supervisor preloads the library itself only if the kernel refuses seccomp; loaded on top of the
    // filter it would ask the daemon twice for one bind.
    const rest = withoutPreload(env.LD_PRELOAD, lib)
    if (rest.length) env.LD_PRELOAD = rest.join(':')
    else delete env.LD_PRELOAD
    const args = [...(hasLib ? ['--preload', lib] : []), '--report-fd', '3', '--group', '--', ...opts.argv]
    child = spawn(supervisorPath(env), args, {stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env, detached: !interactive})
    const report = child.stdio[3] as NodeJS.ReadableStream
    commandPid = new Promise((resolve) => {
      let text = ''
      report.on('data', (c: Buffer) => { text += c })
      report.on('end', () => resolve(Number.parseInt(text, 10) || undefined))
      report.on('error', () => resolve(undefined))
    })
  } else {
    if (hasLib) env.LD_PRELOAD = withPreload(env.LD_PRELOAD, lib)
    child = spawn(opts.argv[0], opts.argv.slice(1), {stdio: 'inherit', env, detached: !interactive})
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
  const processes = child.pid === undefined ? undefined : new CommandProcesses(child.pid, !interactive, graceMs(opts.grace, env))
  // In a terminal's foreground, its Ctrl-C reached the whole group already (the command's processes too).
  const forward = (signal: NodeJS.Signals) => processes?.signal(signal, interactive && signal === 'SIGINT')
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
  // Told to stop: what the command started goes too, within the grace period (then SIGKILL), and its leases with it.
  await processes?.ended()
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
