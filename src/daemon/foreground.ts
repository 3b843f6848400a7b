import fs from 'node:fs'
import {daemonPort} from '../paths.js'
import {logLine, startDaemon, type RunningDaemon} from './server.js'

/**
 * Run the daemon in this process until SIGTERM or SIGINT; SIGHUP reads the config file again. When
 * STYXY_READY_FD names an inherited pipe, one JSON line {pid, port, socket} is written there once both
 * listeners answer: the starter's signal.
 */
export async function runForeground(): Promise<void> {
  // The daemon never runs under the interceptor: children do not inherit it, and if this process was
  // started with it loaded, STYXY_DISABLE (read by the library at each bind) makes it pass our binds through.
  delete process.env.LD_PRELOAD
  process.env.STYXY_DISABLE = '1'
  const daemon: RunningDaemon = await startDaemon({tcpPort: daemonPort()})
  // Last line of defence: a bug in one handler must not take every lease holder's coordinator down. State
  // is safe to keep serving from: every change is a committed SQLite transaction or nothing.
  // A stderr whose reader died (a starter that piped it and crashed) fails asynchronously, as an 'error'
  // event: unhandled, it would come back as an uncaught exception whose report fails the same way, forever.
  process.stderr.on('error', () => {})
  const report = (what: string) => (error: unknown) => logLine(`${what}: ${(error as Error)?.stack ?? String(error)}`)
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
  // A config that does not validate is logged and announced (config.rejected) by the reloader; the old types stay.
  const reload = () => {
    try {
      daemon.config.reload('signal')
    } catch {
      // Already said.
    }
  }
  process.on('SIGHUP', reload)
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => void daemon.stop(signal).then(resolve)
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => stop(s))
  })
  process.off('SIGHUP', reload)
}
