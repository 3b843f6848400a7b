import fs from 'node:fs'
import {daemonPort} from '../paths.js'
import {logLine, startDaemon, type RunningDaemon} from './server.js'
import {sdNotify, takeListenFds} from './activation.js'
import {AlreadyRunningError} from './state-dir.js'
import type {ReadyLine} from '../shared/ready-line.js'
import {fdExhaustion, lowLimitWarning, watchFdUse} from './fd-limit.js'

/**
 * Out of descriptors, each failed accept or open is an error of its own: one clear line naming the limit, then
 * at most one every 10 s (with how many since), not a stack trace per connection.
 */
function fdReporter(): (line: string) => void {
  let last = 0
  let since = 0
  return (line) => {
    const now = Date.now()
    if (now - last < 10_000) {
      since++
      return
    }
    logLine(since ? `${line} (${since} more since the last report)` : line)
    last = now
    since = 0
  }
}

/**
 * Run the daemon in this process until SIGTERM or SIGINT; SIGHUP reads the config file again. When
 * STYXY_READY_FD names an inherited pipe, one JSON line {pid, port, socket} is written there once both
 * listeners answer: the starter's signal ({alreadyRunning, message} when another daemon holds the directory). Under a supervisor (systemd), the listeners may be passed in
 * (LISTEN_FDS) and readiness is told to NOTIFY_SOCKET (READY=1), as Type=notify expects.
 */
export async function runForeground(): Promise<void> {
  // The daemon never runs under the interceptor: children do not inherit it, and if this process was
  // started with it loaded, STYXY_DISABLE (read by the library at each bind) makes it pass our binds through.
  delete process.env.LD_PRELOAD
  process.env.STYXY_DISABLE = '1'
  const low = lowLimitWarning()
  if (low) logLine(low)
  const inherited = takeListenFds(process.env)
  const readyFd = Number(process.env.STYXY_READY_FD)
  delete process.env.STYXY_READY_FD
  const tell = (line: ReadyLine) => {
    if (!Number.isInteger(readyFd) || readyFd <= 2 || inherited.some((l) => l.fd === readyFd)) return
    try {
      fs.writeSync(readyFd, JSON.stringify(line) + '\n')
      fs.closeSync(readyFd)
    } catch {
      // The starter went away; nothing to tell.
    }
  }
  let daemon: RunningDaemon
  try {
    daemon = await startDaemon({tcpPort: daemonPort(), inherited})
  } catch (error) {
    if (error instanceof AlreadyRunningError) tell({alreadyRunning: true, message: error.message})
    throw error
  }
  // Last line of defence: a bug in one handler must not take every lease holder's coordinator down. State
  // is safe to keep serving from: every change is a committed SQLite transaction or nothing.
  // A stderr whose reader died (a starter that piped it and crashed) fails asynchronously, as an 'error'
  // event: unhandled, it would come back as an uncaught exception whose report fails the same way, forever.
  process.stderr.on('error', () => {})
  const fds = fdReporter()
  const stopFdWatch = watchFdUse(fds, Number(process.env.STYXY_FD_CHECK_MS) || undefined)
  const report = (what: string) => (error: unknown) => {
    const short = fdExhaustion(error)
    if (short) fds(short)
    else logLine(`${what}: ${(error as Error)?.stack ?? String(error)}`)
  }
  process.on('uncaughtException', report('uncaught exception'))
  process.on('unhandledRejection', report('unhandled rejection'))
  // A config that does not validate is logged and announced (config.rejected) by the reloader; the old types stay.
  const reload = () => {
    try {
      daemon.config.reload('signal')
    } catch {
      // Already said.
    }
  }
  process.on('SIGHUP', reload)
  // Before readiness is told: a starter may signal the moment it hears (a SIGTERM delivered before these handlers
  // exist takes the default action and kills the daemon mid-start).
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      stopFdWatch()
      sdNotify('STOPPING=1\n')
      void daemon.stop(signal).then(resolve)
    }
    // on, not once: a second TERM while stopping (a supervisor's, a user's) must not hit the default action and kill
    // the daemon mid-stop; daemon.stop() is one stop however often it is asked.
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => stop(s))
  })
  tell({pid: process.pid, port: daemon.tcpPort, socket: daemon.paths.socket})
  const notified = sdNotify(`READY=1\nSTATUS=serving on ${daemon.paths.socket}\nMAINPID=${process.pid}\n`)
  if (notified) logLine(`readiness not told to the supervisor: ${notified}`)
  await stopped
  process.off('SIGHUP', reload)
}
