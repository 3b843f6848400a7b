import type net from 'node:net'
import type {CleanupResponse, ExitWatchRequest} from '../protocol/types.js'

// `styxy run` holds one request open for the life of its command (POST /v1/exit-watch) and lets the end of that
// connection say the run is over. The release then costs the run no round trip at exit (a cold Node process
// pays milliseconds for one, on every dev server's stop), and it still happens when the run itself is killed.
//
// Ordering: the release runs on the connection's EOF, in the read callback that sees it. `styxy run` closes
// the Unix socket outright (by exiting, or destroy()), and the kernel then flags a hang-up with the last data,
// so libuv hands over the request and the EOF in one callback, before any socket that became ready later:
// whoever saw the run exit and then asks the daemon sees its leases gone. Not so for a client that only
// half-closes, or over TCP (a FIN alone is no hang-up): there the EOF is read on the next turn of the loop,
// and another connection ready in the same turn can be answered first.

export class ExitWatches {
  private readonly held = new Set<net.Socket>()
  private stopped = false

  constructor(private readonly release: (req: ExitWatchRequest) => CleanupResponse) {}

  /**
   * Release `req` once `socket` has ended (at once if it already has). Resolves with what was released, or
   * undefined when the daemon stopped first: a daemon going down says nothing about the run, whose leases
   * are then the next daemon's to judge.
   */
  hold(socket: net.Socket, req: ExitWatchRequest): Promise<CleanupResponse | undefined> {
    return new Promise((resolve, reject) => {
      const ended = () => {
        socket.off('end', ended)
        socket.off('close', ended)
        socket.off('error', ended)
        if (!this.held.delete(socket)) return
        if (this.stopped) return resolve(undefined)
        try {
          resolve(this.release(req))
        } catch (error) {
          reject(error)
        }
      }
      this.held.add(socket)
      if (socket.readableEnded || socket.destroyed) return ended()
      socket.on('end', ended)
      socket.on('close', ended)
      socket.on('error', ended)
    })
  }

  /** How many runs are being watched now. */
  get size(): number {
    return this.held.size
  }

  /** Before the daemon closes its connections: their ends are the daemon's doing, not the runs'. */
  stop(): void {
    this.stopped = true
  }
}
