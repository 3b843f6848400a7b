import type http from 'node:http'
import type net from 'node:net'
import {listen} from './listeners.js'

/** What `GET /v1/status` says of the TCP listener. */
export interface TcpState {
  port: number
  listening: boolean
  /** Why it is off (the listen error), null while it listens. */
  error: string | null
  /** How long until the next try while it is off. */
  retryMs: number | null
}

export interface TcpOptions {
  host: string
  /** The configured port; 0 lets the kernel pick one (tests). */
  port: number
  make: () => http.Server
  log: (msg: string) => void
  /** Called each time the listener comes up, with its port. */
  onListening: (port: number) => void
  /** The longest wait between tries while the port is taken. */
  maxRetryMs?: number
  /** What this listener is, in log lines (default `TCP`), and what is lost while it is off. */
  label?: string
  whileOff?: string
}

const FIRST_RETRY_MS = 1000
export const MAX_RETRY_MS = 30_000

/**
 * (The names proxy's listener is one of these too: a taken proxy port must not stop the daemon either.)
 * The TCP listener is the fallback transport: the Unix socket is the main one. A port someone else holds
 * (another user's daemon on the same default 9876, any program) must not keep the daemon from starting, so a
 * failed listen leaves TCP off, says why, and tries again in the background: 1 s, doubling, then every 30 s
 * for as long as it takes (one listen() each time, on an unreferenced timer).
 */
export class TcpListener {
  private server: http.Server | undefined
  private timer: NodeJS.Timeout | undefined
  private delay = FIRST_RETRY_MS
  private nextTry = 0
  private closed = false
  private error: string | null = null
  private boundPort: number

  private constructor(private readonly o: TcpOptions) {
    this.boundPort = o.port
    this.delay = Math.min(FIRST_RETRY_MS, o.maxRetryMs ?? MAX_RETRY_MS)
  }

  /** Listens now if it can, else starts the retries; never throws for a listen error. */
  static async open(o: TcpOptions): Promise<TcpListener> {
    const l = new TcpListener(o)
    await l.attempt()
    return l
  }

  /** A listener handed over by socket activation on fd `fd`: already bound, nothing to retry. */
  static async adopt(o: TcpOptions, fd: number): Promise<TcpListener> {
    const l = new TcpListener(o)
    const server = o.make()
    await listen(server, {fd})
    const address = server.address()
    if (address === null || typeof address === 'string' || address.address !== o.host) {
      server.close()
      throw new Error(`fd ${fd} was passed as the TCP listener but is ${typeof address === 'string' ? 'a Unix socket' : `on ${address?.address}`}, not ${o.host}`)
    }
    l.server = server
    l.boundPort = address.port
    o.onListening(l.boundPort)
    return l
  }

  get state(): TcpState {
    return {
      port: this.boundPort, listening: this.error === null && this.server !== undefined, error: this.error,
      retryMs: this.error === null ? null : Math.max(0, this.nextTry - Date.now()),
    }
  }

  private async attempt(): Promise<void> {
    this.timer = undefined
    const server = this.o.make()
    try {
      await listen(server, {port: this.o.port, host: this.o.host})
    } catch (error) {
      const e = error as NodeJS.ErrnoException
      const why = `${e.code ?? 'error'}: ${e.code === 'EADDRINUSE' ? 'another process listens there' : e.message}`
      if (this.error === null) {
        this.o.log(`${this.o.label ?? 'TCP'} ${this.o.host}:${this.o.port} is unavailable (${why}): ${this.o.whileOff ?? 'serving on the Unix socket only'}, and trying the port again in the background`)
      }
      this.error = why
      this.schedule()
      return
    }
    if (this.closed) {
      server.close()
      return
    }
    this.server = server
    this.boundPort = (server.address() as net.AddressInfo).port
    if (this.error !== null) this.o.log(`${this.o.label ?? 'TCP'} ${this.o.host}:${this.boundPort} is listening now`)
    this.error = null
    this.o.onListening(this.boundPort)
  }

  private schedule(): void {
    if (this.closed) return
    const wait = this.delay
    this.delay = Math.min(this.delay * 2, this.o.maxRetryMs ?? MAX_RETRY_MS)
    this.nextTry = Date.now() + wait
    this.timer = setTimeout(() => void this.attempt(), wait).unref()
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    if (this.server) {
      this.server.closeAllConnections()
      this.server.close()
    }
  }
}
