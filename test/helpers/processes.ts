import {spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'

/**
 * Real processes to hold leases: each lives until it is killed or its stdin closes, which happens when the
 * test process ends however it ends. No fixed lifetime: a soak run outlasts any (a `sleep 300` holder died
 * mid-soak, and the daemon rightly released its leases).
 */
export function spawnHolder(): ChildProcess {
  return spawn('sh', ['-c', 'read _'], {stdio: ['pipe', 'ignore', 'ignore']})
}

/** A holder that runs (spawned), kept in `list` for the test's cleanup: its pid. */
export async function startHolder(list: ChildProcess[]): Promise<number> {
  const h = spawnHolder()
  list.push(h)
  await new Promise((r) => h.once('spawn', r))
  return h.pid!
}

export function killAll(children: ChildProcess[], signal: NodeJS.Signals = 'SIGKILL'): Promise<void[]> {
  return Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve()
    c.once('exit', () => resolve())
    c.kill(signal)
  })))
}

/** A process's start time: field 22 of /proc/<pid>/stat, in clock ticks since boot. */
export function startTimeOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
}

/**
 * A holder's pid given to a new process started within the holder's own 10 ms clock tick, so that pid and
 * start time are alike (needs root: kernel.ns_last_pid). `withHolder` runs while the holder lives,
 * `withHeir` once the heir has both. Only some tries land in the tick: resolves false if none of `tries` did.
 */
export async function recycleWithinTick<T>(
  withHolder: (pid: number) => Promise<T>, withHeir: (pid: number, fromHolder: T) => Promise<void>, tries = 60,
): Promise<boolean> {
  for (let attempt = 0; attempt < tries; attempt++) {
    const holder = spawnHolder()
    await new Promise((r) => holder.once('spawn', r))
    const fromHolder = await withHolder(holder.pid!)
    const start = startTimeOf(holder.pid!)
    await killAll([holder])
    fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(holder.pid! - 1))
    const heir = spawnHolder()
    await new Promise((r) => heir.once('spawn', r))
    try {
      if (heir.pid !== holder.pid || startTimeOf(heir.pid!) !== start) continue
      await withHeir(heir.pid!, fromHolder)
      return true
    } finally {
      await killAll([heir])
    }
  }
  return false
}

/** Listen on host:port (port 0 picks one) and resolve with the server once it listens. */
export function listenOn(host: string, port = 0): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => s.destroy())
    server.once('error', reject)
    server.listen({host, port, ipv6Only: host.includes(':') && host !== '::'}, () => resolve(server))
  })
}

export function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()))
}

/** A port nothing listens on right now (the kernel picked it, then it was closed): for a daemon that must be absent, or a bind that must be free. */
export async function freePort(): Promise<number> {
  const server = await listenOn('127.0.0.1')
  const port = portOf(server)
  await closeServer(server)
  return port
}
