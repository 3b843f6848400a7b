import type WebSocket from 'ws'
import type {StyxyEvent} from '../../src/protocol/events.js'

/** Collect events from a subscription until `pred` holds (no sleeps: the event is the signal). */
export function nextEvent(ws: WebSocket, pred: (e: StyxyEvent) => boolean): Promise<StyxyEvent> {
  return new Promise((resolve) => {
    const on = (data: Buffer) => {
      const e = JSON.parse(data.toString()) as StyxyEvent
      if (pred(e)) {
        ws.off('message', on)
        resolve(e)
      }
    }
    ws.on('message', on)
  })
}

export function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
}
