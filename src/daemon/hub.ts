import {WebSocketServer, WebSocket} from 'ws'
import type {IncomingMessage} from 'node:http'
import type {Duplex} from 'node:stream'
import {CloseCodes, type StyxyEvent} from '../protocol/events.js'
import {rawAnswer} from './raw-answer.js'

type Draft = {[K in StyxyEvent['type']]: {type: K; data: Extract<StyxyEvent, {type: K}>['data']}}[StyxyEvent['type']]

// A subscriber that does not read costs the daemon memory: each event sent to it waits in its socket's queue
// in the heap (the text is shared, but every queued frame costs a write request and a header, ~185 bytes
// measured). 100-400 such subscribers, each allowed 1 MiB, took a daemon with a 96 MB heap down. So what they
// hold is bounded per subscriber and for all of them together, the slowest go first, and their number is capped.
export interface HubLimits {
  /** What one subscriber may hold unsent (bytes, plus `frameCost` per queued frame) before it is dropped. */
  perSubscriber: number
  /** What all subscribers together may hold, dropped ones still delivering their close included. */
  total: number
  /** Heap counted per queued frame besides its bytes. */
  frameCost: number
  /** Subscribers at once; an upgrade beyond is refused (503). ~6 KB of heap each while idle. */
  maxSubscribers: number
}

export const HUB_LIMITS: HubLimits = {perSubscriber: 512 * 1024, total: 16 * 1024 * 1024, frameCost: 192, maxSubscribers: 512}

/** One subscription's bookkeeping: frames handed to its socket and not yet written to the kernel. */
interface Sub {
  queued: number
  done: () => void
  /** When it was dropped (it is closing); 0 while it is open. */
  droppedAt: number
}

export type EventDraft = Draft

export class EventHub {
  private readonly wss = new WebSocketServer({noServer: true, maxPayload: 4096, perMessageDeflate: false})
  private readonly subs = new Map<WebSocket, Sub>()
  private seq = 0
  sent = 0
  private readonly observers: ((draft: Draft) => void)[] = []
  /** Subscribers dropped for falling behind, since start. */
  dropped = 0

  constructor(private readonly limits: HubLimits = HUB_LIMITS) {
    this.wss.on('connection', (ws) => {
      const sub: Sub = {queued: 0, done: () => { sub.queued-- }, droppedAt: 0}
      this.subs.set(ws, sub)
      ws.on('error', () => ws.terminate())
      ws.once('close', () => this.subs.delete(ws))
      // Subscribers only listen; anything they send is ignored.
    })
  }

  get subscribers(): number {
    return this.wss.clients.size
  }

  /** What the subscribers hold unsent, as counted against the limits (bytes). */
  get held(): number {
    let total = 0
    for (const [ws, sub] of this.subs) total += this.holding(ws, sub)
    return total
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.wss.clients.size >= this.limits.maxSubscribers) {
      socket.end(rawAnswer(503, {error: {code: 'TOO_MANY_SUBSCRIBERS', message: `${this.limits.maxSubscribers} event subscribers already: try again later`}}))
      return
    }
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
    if (this.subs.size === 0) return
    const text = JSON.stringify({seq, at: new Date().toISOString(), ...draft} as StyxyEvent)
    for (const [ws, sub] of this.subs) {
      if (ws.readyState !== WebSocket.OPEN) continue
      if (this.holding(ws, sub) > this.limits.perSubscriber) {
        this.drop(ws, sub)
        continue
      }
      sub.queued++
      ws.send(text, sub.done)
      this.sent++
    }
    this.bound()
  }

  close(): void {
    for (const ws of this.subs.keys()) ws.close(CloseCodes.DAEMON_STOPPING, 'daemon stopping')
    // A subscriber that does not read would hold its close handshake (and the process) for ws's 30 s.
    const cut = setTimeout(() => { for (const ws of this.subs.keys()) ws.terminate() }, 500)
    cut.unref()
    this.wss.close()
  }

  private holding(ws: WebSocket, sub: Sub): number {
    return ws.bufferedAmount + sub.queued * this.limits.frameCost
  }

  /**
   * Over the total: dropped subscribers still delivering their close go first (the earliest dropped first),
   * then the open ones that hold the most. A dropped one stops growing at once; its memory goes when it has
   * read its backlog and the close, when ws gives up on it (30 s), or here when the room is needed.
   */
  private bound(): void {
    let total = this.held
    if (total <= this.limits.total) return
    const closing = [...this.subs].filter(([, s]) => s.droppedAt > 0).sort((a, b) => a[1].droppedAt - b[1].droppedAt)
    for (const [ws, sub] of closing) {
      if (total <= this.limits.total) return
      total -= this.holding(ws, sub)
      ws.terminate()
    }
    const open = [...this.subs].filter(([ws, s]) => s.droppedAt === 0 && ws.readyState === WebSocket.OPEN)
      .map(([ws, s]) => [ws, s, this.holding(ws, s)] as const).sort((a, b) => b[2] - a[2])
    for (const [ws, sub, holds] of open) {
      if (total <= this.limits.total) return
      total -= holds
      this.drop(ws, sub)
    }
  }

  private drop(ws: WebSocket, sub: Sub): void {
    sub.droppedAt = performance.now()
    this.dropped++
    ws.close(CloseCodes.TOO_SLOW, 'too slow: events were not read; reconnect')
  }
}
