import net from 'node:net'

/**
 * Does something accept connections on this Unix socket path? A connect, no request: the daemon uses it to
 * tell a live daemon's socket from a crash's leftover, and `styxy run` to skip a health round trip.
 */
export function socketAccepts(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}
