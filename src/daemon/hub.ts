import {WebSocketServer, WebSocket} from 'ws'
import type {IncomingMessage} from 'node:http'
import type {Duplex} from 'node:stream'
import type {StyxyEvent} from '../protocol/events.js'

type Draft = {[K in StyxyEvent['type']]: {type: K; data: Extract<StyxyEvent, {type: K}>['data']}}[StyxyEvent['type']]

// One hub for both listeners. A slow subscriber is dropped rather than allowed to grow the daemon's memory.
const MAX_BUFFERED = 1 << 20

export type EventDraft = Draft

export class EventHub {
  private readonly wss = new WebSocketServer({noServer: true, maxPayload: 4096, perMessageDeflate: false})
  private seq = 0
  sent = 0
  private readonly observers: ((draft: Draft) => void)[] = []

  constructor() {
    this.wss.on('connection', (ws) => {
      ws.on('error', () => ws.terminate())
      // Subscribers only listen; anything they send is ignored.
    })
  }

  get subscribers(): number {
    return this.wss.clients.size
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req))
  }

  /**
   * Told of every event, synchronously, before publish returns: every lease made or ended is published, so an
   * observer keeps what follows from the leases (the follow table) current before the answer is sent.
   */
  observe(fn: (draft: Draft) => void): void {
    this.observers.push(fn)
  }

  /** Send to every subscriber; with none (the usual case on the bind path) only the sequence moves on. */
  publish(draft: Draft): void {
    const seq = ++this.seq
    for (const fn of this.observers) fn(draft)
    if (this.wss.clients.size === 0) return
    const text = JSON.stringify({seq, at: new Date().toISOString(), ...draft} as StyxyEvent)
    for (const ws of this.wss.clients) {
      if (ws.readyState !== WebSocket.OPEN) continue
      if (ws.bufferedAmount > MAX_BUFFERED) {
        ws.terminate()
        continue
      }
      ws.send(text)
      this.sent++
    }
  }

  close(): void {
    for (const ws of this.wss.clients) ws.close(1001, 'daemon stopping')
    this.wss.close()
  }
}
