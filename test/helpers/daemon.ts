import {spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {PROJECT_ROOT} from '../../src/project.js'
import {StyxyClient} from '../../src/client/client.js'
import {endpointFromEnv} from '../../src/client/transport.js'
import {DAEMON_ENTRY, DAEMON_NODE_FLAGS} from '../../src/client/ensure-daemon.js'

export const CLI = path.join(PROJECT_ROOT, 'bin', 'run.cjs')

/** A private state directory per test; STYXY_KEEP_TEMP=1 keeps it for debugging. */
export function tempHome(prefix = 'styxy-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

export function removeHome(dir: string): void {
  if (!process.env.STYXY_KEEP_TEMP) fs.rmSync(dir, {recursive: true, force: true})
}

/** An environment that can never reach the user's daemon, ~/.config or port 9876. */
export function isolatedEnv(home: string, port: number, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env}
  for (const k of Object.keys(env)) if (k.startsWith('STYXY_') || k === 'LD_PRELOAD') delete env[k]
  return {
    // The names proxy on a free port: never the one beside a test's fixed daemon port, nor 9877.
    ...env, STYXY_HOME: home, STYXY_DAEMON_PORT: String(port), STYXY_PROXY_PORT: '0', XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_CACHE_HOME: path.join(home, 'cache'), XDG_DATA_HOME: path.join(home, 'data'), ...extra,
  }
}

export interface TestDaemon {
  home: string
  port: number
  pid: number
  env: NodeJS.ProcessEnv
  child: ChildProcess
  /** Unix socket client. */
  client: StyxyClient
  /** TCP-only client. */
  tcp: StyxyClient
  output(): string
  stop(): Promise<number | null>
  kill9(): Promise<void>
}

export interface StartOptions {
  home?: string
  /** Added to the daemon's environment; a name given as undefined is left out (spawn skips it), e.g. the reaper interval for production timings. */
  env?: Record<string, string | undefined>
  /** A fixed TCP port (restarts reuse the previous daemon's); 0 picks a free one. */
  port?: number
}

/** A real daemon (the real CLI, `daemon start --foreground`) on a temp socket and a free TCP port; ready when it says so on fd 3. */
export async function startDaemon(options: StartOptions = {}): Promise<TestDaemon> {
  const home = options.home ?? tempHome()
  const env = isolatedEnv(home, options.port ?? 0, {STYXY_READY_FD: '3', STYXY_REAP_INTERVAL_MS: '200', ...options.env})
  // The entry the CLI starts detached; the CLI's own `daemon start --foreground` is exercised by the lifecycle tests.
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, DAEMON_ENTRY], {env, stdio: ['ignore', 'pipe', 'pipe', 'pipe']})
  let out = ''
  child.stdout!.on('data', (c) => (out += c))
  child.stderr!.on('data', (c) => (out += c))
  const ready = await new Promise<{pid: number; port: number}>((resolve, reject) => {
    let text = ''
    child.stdio[3]!.on('data', (c: Buffer) => {
      text += c.toString()
      if (text.includes('\n')) resolve(JSON.parse(text.split('\n')[0]))
    })
    child.once('exit', (code) => reject(new Error(`daemon exited with ${code} before ready:\n${out}`)))
  })
  const clientEnv = isolatedEnv(home, ready.port)
  const endpoint = endpointFromEnv(clientEnv)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    home, port: ready.port, pid: ready.pid, env: clientEnv, child,
    client: new StyxyClient({endpoint}),
    tcp: new StyxyClient({endpoint: {...endpoint, only: 'tcp'}}),
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

/** Run the real CLI to completion (with node, as `node bin/run.cjs ...`), in `cwd` when given. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input?: string, cwd?: string): Promise<{code: number | null; stdout: string; stderr: string}> {
  return runCommand(process.execPath, [CLI, ...args], env, input, cwd)
}

/** Run a command to completion, collecting its output. */
export function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, cwd?: string): Promise<{code: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {env, cwd, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    child.on('exit', (code) => resolve({code, stdout, stderr}))
    child.stdin.end(input)
  })
}

/** A daemon that reads the kernel's tables once and keeps them ten minutes: whatever listens afterwards is unseen. */
