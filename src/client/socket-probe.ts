import net from 'node:net'

/**
 * A connection to this Unix socket path, or null when nothing accepts there. An error on it later (the daemon
 * gone) is for its user to notice when it writes, never an unhandled 'error' event.
 */
export function connectUnix(file: string): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect(file)
    s.once('connect', () => resolve(s))
    s.on('error', () => resolve(null))
  })
}

/**
 * Does something accept connections on this Unix socket path? A connect, no request: the daemon uses it to
 * tell a live daemon's socket from a crash's leftover.
 */
export async function socketAccepts(file: string): Promise<boolean> {
  const s = await connectUnix(file)
  s?.destroy()
  return s !== null
}
