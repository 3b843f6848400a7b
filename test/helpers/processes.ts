import {spawn, type ChildProcess} from 'node:child_process'
import net from 'node:net'

/**
 * Real processes to hold leases: each lives until it is killed or its stdin closes, which happens when the
 * test process ends however it ends. No fixed lifetime: a soak run outlasts any (a `sleep 300` holder died
 * mid-soak, and the daemon rightly released its leases).
 */
export function spawnHolder(): ChildProcess {
  return spawn('sh', ['-c', 'read _'], {stdio: ['pipe', 'ignore', 'ignore']})
}

export function killAll(children: ChildProcess[], signal: NodeJS.Signals = 'SIGKILL'): Promise<void[]> {
  return Promise.all(children.map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve()
    c.once('exit', () => resolve())
    c.kill(signal)
  })))
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
