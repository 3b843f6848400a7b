// `styxy daemon install|uninstall`: the daemon supervised by the systemd user manager (socket activation,
// Restart=on-failure), where there is one. Without one, the daemon is started on demand as before
// (src/client/ensure-daemon.ts) and nothing restarts it after a crash; `doctor` says which applies.
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {daemonPort, resolvePaths} from '../paths.js'
import {DAEMON_ENTRY, DAEMON_NODE_FLAGS, stopDaemon} from '../client/ensure-daemon.js'
import {CliError} from './errors.js'
import {ExitCode} from './exit-codes.js'
import {renderUnits, UNITS, type UnitFile} from './systemd.js'

/** States `systemctl --user is-system-running` prints when a manager answers (it exits non-zero for some). */
const MANAGER_STATES = new Set(['initializing', 'starting', 'running', 'degraded', 'maintenance', 'stopping'])

/** The manager, or why there is none (no $XDG_RUNTIME_DIR, no $XDG_RUNTIME_DIR/systemd, systemctl missing or refusing). */
export function userManager(env: NodeJS.ProcessEnv = process.env): {ok: true} | {ok: false; why: string} {
  const runtime = env.XDG_RUNTIME_DIR
  if (!runtime) return {ok: false, why: 'XDG_RUNTIME_DIR is not set (no login session with a user manager)'}
  if (!fs.existsSync(path.join(runtime, 'systemd'))) return {ok: false, why: `${path.join(runtime, 'systemd')} does not exist`}
  const r = systemctl(['is-system-running'], env)
  const state = r.stdout.trim()
  if (r.error) return {ok: false, why: `systemctl: ${r.error}`}
  if (!MANAGER_STATES.has(state)) return {ok: false, why: `systemctl --user is-system-running: ${state || r.stderr.trim() || `exit ${r.status}`}`}
  return {ok: true}
}

export function unitDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config'), 'systemd', 'user')
}

function systemctl(args: string[], env: NodeJS.ProcessEnv): {status: number | null; stdout: string; stderr: string; error?: string} {
  const r = spawnSync('systemctl', ['--user', ...args], {env, encoding: 'utf8', timeout: 30_000})
  return {status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error?.message}
}

function mustSystemctl(args: string[], env: NodeJS.ProcessEnv): void {
  const r = systemctl(args, env)
  if (r.status !== 0) throw new CliError('SYSTEMCTL_FAILED', `systemctl --user ${args.join(' ')} failed: ${r.error ?? (r.stderr.trim() || `exit ${r.status}`)}`, ExitCode.INTERNAL)
}

const CARRIED = ['STYXY_MIN_PORT', 'STYXY_KERNEL', 'STYXY_KERNEL_ADDON', 'STYXY_LISTEN_GRACE_MS', 'STYXY_INSTANCE_TTL_MS', 'STYXY_REAP_INTERVAL_MS']

/** The units for this environment: the state, socket, port and config this CLI would use, spelled out. */
export function unitsFor(env: NodeJS.ProcessEnv = process.env): UnitFile[] {
  const paths = resolvePaths(env)
  const port = daemonPort(env)
  const environment: Record<string, string> = {STYXY_HOME: paths.stateDir, STYXY_SOCKET: paths.socket, STYXY_CONFIG: paths.configFile, STYXY_DAEMON_PORT: String(port)}
  for (const k of CARRIED) if (env[k]) environment[k] = env[k]!
  return renderUnits({node: process.execPath, nodeFlags: DAEMON_NODE_FLAGS, entry: DAEMON_ENTRY, socket: paths.socket, port: port || null, log: paths.log, environment})
}

function noManager(why: string, what: string): CliError {
  return new CliError('NO_USER_MANAGER', `no systemd user manager (${why}): cannot ${what}. The daemon is still started on demand (styxy run, styxy daemon start), but nothing restarts it after a crash`, ExitCode.NO)
}

export interface Installed {
  dir: string
  units: string[]
  /** The on-demand daemon stopped so the socket units could take its socket and port. */
  stoppedPid: number | null
}

/** Writes the units, stops an on-demand daemon (it holds the socket and the port), enables and starts the sockets. */
export async function install(env: NodeJS.ProcessEnv = process.env): Promise<Installed> {
  const manager = userManager(env)
  if (!manager.ok) throw noManager(manager.why, 'install the units')
  const dir = unitDir(env)
  const files = unitsFor(env)
  fs.mkdirSync(dir, {recursive: true})
  for (const f of files) fs.writeFileSync(path.join(dir, f.name), f.text)
  mustSystemctl(['daemon-reload'], env)
  const stopped = await stopDaemon(env)
  const sockets = files.map((f) => f.name).filter((n) => n !== UNITS.service)
  mustSystemctl(['enable', '--now', ...sockets], env)
  return {dir, units: files.map((f) => f.name), stoppedPid: stopped?.pid ?? null}
}

/** Stops and disables the units and removes their files; the on-demand start takes over again. */
export function uninstall(env: NodeJS.ProcessEnv = process.env): {dir: string; removed: string[]} {
  const manager = userManager(env)
  if (!manager.ok) throw noManager(manager.why, 'uninstall the units')
  const dir = unitDir(env)
  const present = Object.values(UNITS).filter((n) => fs.existsSync(path.join(dir, n)))
  if (present.length) {
    // The service first: stopping only the sockets would leave the running daemon without its supervisor.
    mustSystemctl(['disable', '--now', ...[UNITS.service, UNITS.socket, UNITS.tcp].filter((n) => present.includes(n))], env)
    for (const n of present) fs.rmSync(path.join(dir, n), {force: true})
    mustSystemctl(['daemon-reload'], env)
  }
  return {dir, removed: present}
}

/** For `doctor`: whether the daemon is supervised, and if not why. */
export function supervisionCheck(env: NodeJS.ProcessEnv = process.env): {level: 'pass' | 'warn' | 'fail'; detail: string; hint?: string} {
  const manager = userManager(env)
  const installed = fs.existsSync(path.join(unitDir(env), UNITS.socket))
  if (!manager.ok) {
    return {level: 'pass', detail: `no systemd user manager (${manager.why}): the daemon is started on demand (styxy run, daemon start) and is not restarted after a crash`}
  }
  if (!installed) {
    return {level: 'warn', detail: 'a systemd user manager runs, but the daemon is not under it: after a crash it stays down until the next styxy run', hint: 'styxy daemon install'}
  }
  const active = systemctl(['is-active', UNITS.socket], env).stdout.trim()
  return active === 'active'
    ? {level: 'pass', detail: `supervised by systemd: ${UNITS.socket} is active (socket activation, Restart=on-failure)`}
    : {level: 'fail', detail: `${UNITS.socket} is installed but ${active || 'not active'}`, hint: `systemctl --user status ${UNITS.socket} ${UNITS.service}; or styxy daemon install again`}
}
