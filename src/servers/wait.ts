import type WebSocket from 'ws'
import type {StyxyClient} from '../client/client.js'
import {pollUntil} from '../retry.js'
import {describeQuery, locate, type Located, type ServerQuery} from './servers.js'

export class WaitTimeout extends Error {
  readonly code = 'TIMEOUT'
}

// Events after which a server may have appeared: a lease made (a bind, an allocation) is the only news of one.
const WAKERS = new Set(['lease.created', 'bind.allowed', 'bind.remapped', 'daemon.started'])

/**
 * Until a server of `project` that `q` means listens, within `timeoutMs`. The lease is awaited on the daemon's
 * event stream (no polling while nothing happens); between a bind and its listen() there is no event, so that
 * last step asks the kernel, through the daemon, with a doubling pause.
 */
export async function waitForServer(client: StyxyClient, q: ServerQuery, project: string, timeoutMs: number): Promise<Located> {
  const deadline = Date.now() + timeoutMs
  const timeout = () => new WaitTimeout(`no server of this project ${describeQuery(q)} was listening within ${timeoutMs} ms`)
  const ws = client.events()
  let wake: () => void = () => {}
  let closed = false
  ws.on('message', (data: Buffer) => {
    try {
      if (WAKERS.has((JSON.parse(data.toString()) as {type: string}).type)) wake()
    } catch {
      // Not an event.
    }
  })
  ws.on('close', () => { closed = true; wake() })
  ws.on('error', () => { closed = true; wake() })
  try {
    // Subscribed before the first look, so that a lease made in between still wakes us.
    await opened(ws, deadline, timeout)
    for (;;) {
      const news = new Promise<void>((resolve) => { wake = resolve })
      const found = await locate(client, q, project)
      if (found) {
        const left = deadline - Date.now()
        if (left <= 0) throw timeout()
        const listening = await pollUntil(async () => ((await client.port(found.server.port)).bound ? true : undefined), {
          timeoutMs: left, firstMs: 5, maxMs: 100, timeoutError: timeout,
        })
        if (listening) return found
      }
      if (closed) throw new Error('the daemon closed the event stream while waiting')
      const left = deadline - Date.now()
      if (left <= 0) throw timeout()
      let timer: NodeJS.Timeout | undefined
      await Promise.race([news, new Promise<void>((resolve) => { timer = setTimeout(resolve, left) })])
      clearTimeout(timer)
    }
  } finally {
    ws.removeAllListeners()
    ws.on('error', () => {})
    ws.terminate()
  }
}

function opened(ws: WebSocket, deadline: number, timeout: () => Error): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(timeout()), Math.max(0, deadline - Date.now()))
    ws.once('open', () => { clearTimeout(timer); resolve() })
    ws.once('error', (e) => { clearTimeout(timer); reject(e) })
    ws.once('unexpected-response', () => { clearTimeout(timer); reject(new Error('the daemon refused the event stream')) })
  })
}
