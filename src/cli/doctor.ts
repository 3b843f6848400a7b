import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {StyxyClient} from '../client/client.js'
import {probe} from '../client/ensure-daemon.js'
import {isBrowserBlocked} from '../core/blocked-ports.js'
import {startTimeOf} from '../shared/proc-stat.js'
import {inspectStateDir} from '../shared/state-dir-trust.js'
import {loadConfig} from '../config.js'
import {resolvePaths} from '../paths.js'
import {preloadLibraryPath, supervisorPath} from '../project.js'
import type {ServiceType} from '../protocol/types.js'
import {supervisionCheck} from './supervision.js'

export type Level = 'pass' | 'warn' | 'fail'

export interface Check {
  name: string
  level: Level
  detail: string
  hint?: string
}

const octal = (m: number) => `0${m.toString(8)}`

function privateFile(name: string, file: string, want: number, hint: string): Check {
  try {
    const st = fs.statSync(file)
    const m = st.mode & 0o777
    if (process.getuid && st.uid !== process.getuid()) return {name, level: 'fail', detail: `${file} belongs to uid ${st.uid}`, hint}
    if (m & 0o077) return {name, level: 'fail', detail: `${file} is ${octal(m)}: other users can reach it`, hint}
    return {name, level: 'pass', detail: `${file} is ${octal(m)}`}
  } catch {
    return {name, level: want === 0o700 ? 'fail' : 'warn', detail: `${file} does not exist`, hint: 'start the daemon: styxy daemon start'}
  }
}

/** A link, another user's directory or one open to writes is refused by every part of Styxy: the fix is in the message. */
function stateDirCheck(dir: string): Check {
  const name = 'state directory'
  try {
    if (inspectStateDir(dir) === 'missing') return {name, level: 'fail', detail: `${dir} does not exist`, hint: 'start the daemon: styxy daemon start'}
  } catch (error) {
    return {name, level: 'fail', detail: (error as Error).message}
  }
  return privateFile(name, dir, 0o700, `chmod 700 ${dir} (the daemon does it when it starts)`)
}

function overlaps(types: ServiceType[], lo: number, hi: number): string[] {
  return types.filter((t) => t.range[1] >= lo && t.range[0] <= hi).map((t) => `${t.name} ${t.range[0]}-${t.range[1]}`)
}

/** Every check is independent: one failing never hides the others. */
export async function runChecks(env: NodeJS.ProcessEnv = process.env): Promise<Check[]> {
  const paths = resolvePaths(env)
  const checks: Check[] = []
  const unix = StyxyClient.fromEnv({...env}, 2000)
  const health = await probe(new StyxyClient({endpoint: {...unix.endpoint, only: 'unix'}, timeoutMs: 2000})).catch(() => null)
  checks.push(health
    ? {name: 'daemon (Unix socket)', level: 'pass', detail: `pid ${health.pid}, version ${health.version}, ${paths.socket}`}
    : {name: 'daemon (Unix socket)', level: 'fail', detail: `no answer on ${paths.socket}`, hint: 'styxy daemon start (its log: ' + paths.log + ')'})
  const status = health ? await unix.status().catch(() => undefined) : undefined
  if (status?.tcp.listening === false) {
    // The daemon could not listen there (another user's daemon, any program): it says why itself.
    checks.push({name: 'daemon (TCP + token)', level: 'warn', detail: `off: ${status.tcp.host}:${status.tcp.port} ${status.tcp.error}; the daemon serves on its Unix socket and tries the port again every 30 s at most`, hint: 'nothing to do if the Unix socket works; for a TCP fallback of your own, set STYXY_DAEMON_PORT to a free port (for the daemon and its clients) and restart the daemon'})
  } else {
    const tcp = new StyxyClient({endpoint: {...unix.endpoint, only: 'tcp'}, timeoutMs: 2000})
    const tcpHealth = await tcp.health().then((h) => ({ok: true as const, h}), (e: Error) => ({ok: false as const, e}))
    checks.push(tcpHealth.ok
      ? {name: 'daemon (TCP + token)', level: 'pass', detail: `${unix.endpoint.host}:${unix.endpoint.port}`}
      : {name: 'daemon (TCP + token)', level: health ? 'fail' : 'warn', detail: `${unix.endpoint.host}:${unix.endpoint.port}: ${tcpHealth.e.message}`, hint: 'is STYXY_DAEMON_PORT the daemon\'s port? is the token file readable?'})
  }
  if (status?.proxy) {
    const p = status.proxy
    checks.push(p.listening
      ? {name: 'names proxy', level: 'pass', detail: `http://NAME.localhost:${p.port}/ on ${p.host}:${p.port}`}
      : {name: 'names proxy', level: 'warn', detail: `off: ${p.host}:${p.port} ${p.error}; the daemon tries the port again every 30 s at most, and servers have no *.localhost URL meanwhile`, hint: 'set STYXY_PROXY_PORT to a free port (or off) and restart the daemon'})
  }
  const kernel = status?.kernel
  if (kernel) {
    checks.push(kernel.sockets === 'sock_diag' && kernel.exits === 'pidfd'
      ? {name: 'kernel interface', level: 'pass', detail: `sock_diag (netlink) for listeners, pidfd for holder exits (${kernel.watching} watched)`}
      : {name: 'kernel interface', level: 'warn', detail: `${kernel.sockets === 'sock_diag' ? 'sock_diag' : 'reading /proc/net/tcp'} for listeners, ${kernel.exits === 'pidfd' ? 'pidfd' : 'polling'} for exits: ${kernel.reason}`, hint: 'build the native addon (make) and restart the daemon; a busy host makes every bind decision slower meanwhile'})
  }
  checks.push(stateDirCheck(paths.stateDir))
  checks.push({name: 'supervision', ...supervisionCheck(env)})
  checks.push(privateFile('socket permissions', paths.socket, 0o600, `chmod 600 ${paths.socket} (or restart the daemon)`))
  checks.push(privateFile('token permissions', paths.token, 0o600, `chmod 600 ${paths.token}`))

  const lib = preloadLibraryPath(env)
  if (!fs.existsSync(lib)) {
    checks.push({name: 'interceptor library', level: 'fail', detail: `${lib} is missing`, hint: 'build it: make'})
  } else {
    // glibc only warns when a preload fails to load, so ask the loader itself.
    const r = spawnSync('true', [], {env: {...env, LD_PRELOAD: lib}, encoding: 'utf8'})
    checks.push(r.stderr.includes('cannot be preloaded')
      ? {name: 'interceptor library', level: 'fail', detail: r.stderr.trim(), hint: 'rebuild it: make'}
      : {name: 'interceptor library', level: 'pass', detail: `${lib} loads (${Math.round(fs.statSync(lib).size / 1024)} KB)`})
  }

  checks.push(seccompCheck(env))

  let types: ServiceType[] = []
  try {
    types = loadConfig(paths.configFile).serviceTypes
    checks.push({name: 'config', level: 'pass', detail: `${types.length} service types${fs.existsSync(paths.configFile) ? ` (${paths.configFile})` : ' (built in)'}`})
  } catch (error) {
    checks.push({name: 'config', level: 'fail', detail: (error as Error).message, hint: 'styxy config validate'})
  }
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    const hit = overlaps(types, lo, hi)
    checks.push(hit.length
      ? {name: 'ephemeral port range', level: 'warn', detail: `kernel range ${lo}-${hi} overlaps ${hit.join(', ')}: outgoing connections can take these ports`, hint: 'move those types below the ephemeral range in the config'}
      : {name: 'ephemeral port range', level: 'pass', detail: `no managed range overlaps ${lo}-${hi}`})
  } catch {
    checks.push({name: 'ephemeral port range', level: 'warn', detail: 'cannot read /proc/sys/net/ipv4/ip_local_port_range'})
  }
  const blocked = types.flatMap((t) => {
    const out: number[] = []
    for (let p = t.range[0]; p <= t.range[1]; p++) if (isBrowserBlocked(p)) out.push(p)
    return out
  })
  checks.push({name: 'browser-blocked ports', level: 'pass', detail: blocked.length ? `${blocked.join(', ')} inside managed ranges are never handed out` : 'none inside managed ranges'})

  if (health) {
    const leases = await unix.leases()
    const stale = leases.filter((l) => l.pid !== null && startTimeOf(l.pid) === null)
    checks.push(stale.length
      ? {name: 'stale leases', level: 'warn', detail: `${stale.length} lease(s) held by exited processes: ${stale.map((l) => l.port).join(', ')}`, hint: 'styxy cleanup'}
      : {name: 'stale leases', level: 'pass', detail: `${leases.length} lease(s), none held by an exited process`})
  }
  return checks
}

/** The supervisor's own probe runs one trapped bind through every step the real path takes. */
function seccompCheck(env: NodeJS.ProcessEnv): Check {
  const name = 'seccomp backend'
  const sup = supervisorPath(env)
  if (!fs.existsSync(sup)) return {name, level: 'warn', detail: `${sup} is missing`, hint: 'build it: make'}
  const r = spawnSync(sup, ['--probe'], {env, encoding: 'utf8', timeout: 5000})
  if (r.status === 0) return {name, level: 'pass', detail: 'seccomp user notification and pidfd_getfd work: static and Go binaries are covered'}
  const why = r.stderr.trim().replace(/^styxy: /, '') || `probe ended with ${r.status ?? r.signal}`
  return {name, level: 'warn', detail: why, hint: 'styxy run falls back to LD_PRELOAD; static and Go binaries are not covered here'}
}

export function worst(checks: Check[]): Level {
  return checks.some((c) => c.level === 'fail') ? 'fail' : checks.some((c) => c.level === 'warn') ? 'warn' : 'pass'
}
