import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type {Health} from '../protocol/types.js'
import {PROJECT_ROOT} from '../project.js'
import {resolvePaths} from '../paths.js'
import {pollUntil} from '../retry.js'
import {startTimeOf} from '../shared/proc-stat.js'
import {StyxyClient, TransportError} from './client.js'
import type net from 'node:net'
import {connectUnix} from './socket-probe.js'
import {parseReadyLine} from '../shared/ready-line.js'
import {inspectStateDir, prepareStateDir} from '../shared/state-dir-trust.js'

export interface StartedDaemon {
  pid: number
  alreadyRunning: boolean
  version: string
}

/**
 * Node flags for the daemon process. V8's default young generation (16 MB semi-spaces) is sized for
 * throughput-hungry servers; a per-user daemon should stay small, and 1 MB keeps RSS under 100 MB with 10,000 leases.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=96']

export const DAEMON_ENTRY = path.join(PROJECT_ROOT, 'dist', 'src', 'daemon', 'main.js')

/** The daemon must never run under the interceptor: it would intercept its own listeners. */
export function daemonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = {...env}
  delete out.LD_PRELOAD
  delete out.STYXY_READY_FD
  return out
}

export async function probe(client: StyxyClient): Promise<Health | null> {
  try {
    return await client.health()
  } catch (error) {
    if (error instanceof TransportError && error.code === 'DAEMON_NOT_RUNNING') return null
    throw error
  }
}

/**
 * Start the daemon detached and return once it answers. The child reports readiness on a pipe (fd 3), so
 * there is no polling: either the ready line arrives, or the child exits and its log says why.
 */
export async function startDetached(env: NodeJS.ProcessEnv = process.env, timeoutMs = 10_000): Promise<StartedDaemon> {
  const client = StyxyClient.fromEnv(env, 2000)
  const running = await probe(client)
  if (running) return {pid: running.pid, alreadyRunning: true, version: running.version}
  const paths = resolvePaths(env)
  prepareStateDir(paths.stateDir)
  const logFd = fs.openSync(paths.log, 'a', 0o600)
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_ENTRY], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'pipe'],
    env: {...daemonEnv(env), STYXY_READY_FD: '3'},
  })
  fs.closeSync(logFd)
  const ready = child.stdio[3] as NodeJS.ReadableStream
  try {
    const pid = await new Promise<number>((resolve, reject) => {
      let text = ''
      const timer = setTimeout(() => reject(new Error(`the daemon did not become ready within ${timeoutMs} ms (see ${paths.log})`)), timeoutMs)
      ready.on('data', (chunk: Buffer) => {
        text += chunk.toString()
        if (!text.includes('\n')) return
        clearTimeout(timer)
        const line = parseReadyLine(text.split('\n')[0])
        // Another starter won the race (its daemon holds the lock): use that one.
        resolve('pid' in line ? line.pid : waitForOther(client, timeoutMs))
      })
      // Exited without a word on the pipe: a failure (Node's own exit 1 for an uncaught error included), which the
      // log tells. 'close', not 'exit': 'exit' may come before the pipe's last data has been read.
      child.once('close', (code) => {
        clearTimeout(timer)
        reject(new Error(`the daemon exited (code ${code}) before it was ready: ${lastLine(paths.log)}`))
      })
    })
    return {pid, alreadyRunning: false, version: (await client.health()).version}
  } finally {
    ready.removeAllListeners()
    ;(ready as unknown as {destroy(): void}).destroy()
    child.removeAllListeners()
    child.unref()
  }
}

/**
 * Make sure a daemon is there before a command starts under the interceptor. A socket that accepts is enough:
 * it sits in the user's private state directory, and a daemon that accepts but does not answer (stopped) is
 * the interceptor's to handle (it fails open). Otherwise the full check, and a start if need be.
 * Returns that first connection when it was accepted, for the caller's one request (its exit watch): a second
 * connection costs `styxy run` milliseconds. The caller must use it or destroy it.
 */
export async function ensureRunning(env: NodeJS.ProcessEnv): Promise<net.Socket | undefined> {
  const paths = resolvePaths(env)
  // Not even a connect into a directory another user could have filled (throws UnsafeStateDirError).
  inspectStateDir(paths.stateDir)
  const accepted = await connectUnix(paths.socket)
  // Unreferenced: a caller that fails before using it must still be able to exit.
  if (accepted) return accepted.unref()
  await startDetached(env)
  return undefined
}

/** The winning starter's daemon holds the lock but may not listen yet: probe with a doubling delay. */
function waitForOther(client: StyxyClient, timeoutMs: number): Promise<number> {
  return pollUntil(async () => (await probe(client))?.pid, {
    timeoutMs, firstMs: 5, maxMs: 200,
    timeoutError: () => new Error(`another daemon holds the state directory but did not answer within ${timeoutMs} ms`),
  })
}

function lastLine(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n')
    return lines[lines.length - 1] ?? ''
  } catch {
    return '(no log)'
  }
}

/** Ask the daemon to stop (SIGTERM to the pid it reports) and wait until it is gone. */
export async function stopDaemon(env: NodeJS.ProcessEnv = process.env, timeoutMs = 10_000): Promise<{pid: number} | null> {
  const client = StyxyClient.fromEnv(env, 2000)
  const health = await probe(client)
  if (!health) return null
  process.kill(health.pid, 'SIGTERM')
  // The daemon is not our child, so there is no exit event to wait on: watch its pid disappear.
  // A zombie counts as gone: where pid 1 does not reap, it would otherwise linger forever.
  return pollUntil(() => (startTimeOf(health.pid) === null ? {pid: health.pid} : undefined), {
    timeoutMs, firstMs: 5, maxMs: 100,
    timeoutError: () => new Error(`daemon pid ${health.pid} did not stop within ${timeoutMs} ms`),
  })
}
