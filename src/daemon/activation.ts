import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {kernelAddonPath, loadKernelAddon} from '../kernel/native.js'

// Socket activation and readiness, as systemd does them (sd_listen_fds(3), sd_notify(3)), without libsystemd.
// Under a supervisor the listening sockets outlive the daemon: a connection made while it restarts waits in
// the socket's backlog and is answered by the next daemon, instead of being refused.

/** SD_LISTEN_FDS_START: the first passed fd. */
const FIRST_FD = 3

export type Inherited = {fd: number; kind: 'unix'; path: string} | {fd: number; kind: 'tcp'}

/**
 * The listeners passed to this process (LISTEN_PID is ours, LISTEN_FDS of them from fd 3), once: the variables
 * are removed so nothing we start would take them for its own. Variables meant for another pid (a parent
 * that left them set) are ignored, as sd_listen_fds does.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Inherited[] {
  const [forPid, count] = [env.LISTEN_PID, env.LISTEN_FDS]
  delete env.LISTEN_PID
  delete env.LISTEN_FDS
  delete env.LISTEN_FDNAMES
  if (forPid === undefined || count === undefined || Number(forPid) !== pid) return []
  const n = Number(count)
  if (!Number.isInteger(n) || n < 1 || n > 2) throw new Error(`LISTEN_FDS=${count}: expected the Unix socket and at most one TCP listener`)
  const out: Inherited[] = []
  for (let fd = FIRST_FD; fd < FIRST_FD + n; fd++) out.push(classify(fd))
  if (out.filter((l) => l.kind === 'unix').length > 1 || out.filter((l) => l.kind === 'tcp').length > 1) {
    throw new Error(`LISTEN_FDS=${count}: expected one Unix socket and one TCP listener, got ${out.map((l) => l.kind).join(' and ')}`)
  }
  return out
}

/**
 * Which transport an inherited fd is. This decides whether requests on it need the token, so it is read from
 * the kernel (the socket's inode among /proc/net/unix's), not from LISTEN_FDNAMES; the listener's own address
 * is checked again once listening (listeners.ts).
 */
function classify(fd: number): Inherited {
  let link: string
  try {
    link = fs.readlinkSync(`/proc/self/fd/${fd}`)
  } catch {
    throw new Error(`LISTEN_FDS names fd ${fd}, which is not open`)
  }
  const ino = /^socket:\[(\d+)\]$/.exec(link)?.[1]
  if (!ino) throw new Error(`LISTEN_FDS names fd ${fd}, which is not a socket (${link})`)
  for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f[6] === ino) {
      if (!f[7]) throw new Error(`fd ${fd} is an unnamed Unix socket`)
      return {fd, kind: 'unix', path: f[7]}
    }
  }
  return {fd, kind: 'tcp'}
}

/**
 * sd_notify: tells a supervisor (systemd's Type=notify) that we are ready or stopping. From this process, through
 * the kernel addon (kernel/notify.zig); where the addon cannot load, `systemd-notify` (which the unit's
 * NotifyAccess=all accepts). Returns why it could not, or null; nothing to do without NOTIFY_SOCKET.
 */
export function sdNotify(message: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const socket = env.NOTIFY_SOCKET
  if (!socket) return null
  const native = loadKernelAddon(kernelAddonPath(env))
  if (native.addon) {
    try {
      native.addon.notify(socket, message)
      return null
    } catch (error) {
      return `sd_notify to ${socket}: ${(error as Error).message}`
    }
  }
  const args = message.split('\n').filter(Boolean)
  const r = spawnSync('systemd-notify', [`--pid=${process.pid}`, ...args], {env, stdio: 'ignore', timeout: 5000})
  return r.status === 0 ? null : `systemd-notify ${args.join(' ')}: ${r.error?.message ?? `exit ${r.status}`} (and the kernel addon did not load: ${native.error})`
}
