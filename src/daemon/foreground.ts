import fs from 'node:fs'
import {daemonPort} from '../paths.js'
import {logLine, startDaemon, type RunningDaemon} from './server.js'
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
 * Run the daemon in this process until SIGTERM, SIGINT or SIGHUP. When STYXY_READY_FD names an inherited
 * pipe, one JSON line {pid, port, socket} is written there once both listeners answer: the starter's signal.
 */
export async function runForeground(): Promise<void> {
  // The daemon never runs under the interceptor: children do not inherit it, and if this process was
  // started with it loaded, STYXY_DISABLE (read by the library at each bind) makes it pass our binds through.
  delete process.env.LD_PRELOAD
  process.env.STYXY_DISABLE = '1'
  const low = lowLimitWarning()
  if (low) logLine(low)
  const daemon: RunningDaemon = await startDaemon({tcpPort: daemonPort()})
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
  const readyFd = Number(process.env.STYXY_READY_FD)
  delete process.env.STYXY_READY_FD
  if (Number.isInteger(readyFd) && readyFd > 2) {
    try {
      fs.writeSync(readyFd, JSON.stringify({pid: process.pid, port: daemon.tcpPort, socket: daemon.paths.socket}) + '\n')
      fs.closeSync(readyFd)
    } catch {
      // The starter went away; nothing to tell.
    }
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      stopFdWatch()
      void daemon.stop(signal).then(resolve)
    }
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(s, () => stop(s))
  })
}
