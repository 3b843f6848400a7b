import os from 'node:os'
import path from 'node:path'

export const DEFAULT_DAEMON_PORT = 9876
export const DAEMON_HOST = '127.0.0.1'

export interface StyxyPaths {
  stateDir: string
  socket: string
  database: string
  token: string
  log: string
  audit: string
  lock: string
  /** The moves clients follow (docs/follow-table.md); interceptor/paths.zig finds it by the same rule. */
  follow: string
  configFile: string
}

/** Everything the daemon keeps lives in one state directory; the environment decides which. */
export function resolvePaths(env: NodeJS.ProcessEnv = process.env): StyxyPaths {
  const home = env.HOME || os.homedir()
  const stateDir = env.STYXY_HOME
    ? path.resolve(env.STYXY_HOME)
    : path.join(env.XDG_STATE_HOME || path.join(home, '.local', 'state'), 'styxy')
  const configDir = path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'styxy')
  const socket = env.STYXY_SOCKET ? path.resolve(env.STYXY_SOCKET) : path.join(stateDir, 'daemon.sock')
  return {
    stateDir,
    socket,
    // One rule the interceptor applies too (interceptor/paths.zig), so it needs no setting of its own.
    database: path.join(stateDir, 'styxy.db'),
    token: path.join(stateDir, 'token'),
    log: path.join(stateDir, 'daemon.log'),
    audit: path.join(stateDir, 'reassignments.log'),
    lock: path.join(stateDir, 'daemon.lock'),
    follow: path.join(stateDir, 'follow'),
    configFile: env.STYXY_CONFIG ? path.resolve(env.STYXY_CONFIG) : path.join(configDir, 'config.json'),
  }
}

export function daemonPort(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.STYXY_DAEMON_PORT
  if (raw === undefined || raw === '') return DEFAULT_DAEMON_PORT
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`STYXY_DAEMON_PORT must be a port number, got "${raw}"`)
  return n
}

/**
 * The names proxy's port (null: off). STYXY_PROXY_PORT: a port, 0 for any free one, or `off`; unset, the one
 * beside the daemon's TCP port (9877 by default), or a free one when the daemon's is itself picked by the kernel.
 */
export function proxyPort(env: NodeJS.ProcessEnv = process.env, tcpPort = daemonPort(env)): number | null {
  const raw = env.STYXY_PROXY_PORT
  if (raw === undefined || raw === '') return tcpPort === 0 || tcpPort >= 65535 ? 0 : tcpPort + 1
  if (raw.toLowerCase() === 'off') return null
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`STYXY_PROXY_PORT must be a port number or "off", got "${raw}"`)
  return n
}
