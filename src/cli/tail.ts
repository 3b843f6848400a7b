import type {StyxyClient} from '../client/client.js'
import {CloseCodes, EVENT_TYPES, type StyxyEvent} from '../protocol/events.js'
import {paint} from './table.js'

export interface TailFilter {
  service?: string
  port?: number
  type?: string
}

/** Why `--type` can never match (a message naming the valid ones), or null when it can. */
export function unknownTypeFilter(type: string): string | null {
  const families = [...new Set(EVENT_TYPES.map((t) => t.split('.')[0]))]
  if (families.includes(type) || (EVENT_TYPES as readonly string[]).includes(type)) return null
  return `unknown event type "${type}": give a family (${families.join(', ')}) or a full type (${EVENT_TYPES.join(', ')})`
}

export function matches(e: StyxyEvent, f: TailFilter): boolean {
  const d = e.data as {service?: string; port?: number; requestedPort?: number; from?: number; to?: number}
  if (f.type && !(e.type === f.type || e.type.startsWith(`${f.type}.`))) return false
  if (f.service && d.service !== f.service) return false
  if (f.port !== undefined && ![d.port, d.requestedPort, d.from, d.to].includes(f.port)) return false
  return true
}

const COLORS: Record<string, number> = {'bind.remapped': 33, 'connect.followed': 35, 'bind.denied': 31, 'lease.released': 90, 'daemon.stopping': 31, 'daemon.started': 32}

/** One readable line: time, kind, port, pid, command, and what changed. */
export function formatEvent(e: StyxyEvent, color: boolean): string {
  const d = e.data as Record<string, unknown>
  const time = e.at.slice(11, 23)
  const port = d.port ?? d.to
  const parts = [time, paint(COLORS[e.type] ?? 36, e.type.padEnd(19), color), port === undefined ? '      ' : `:${String(port).padEnd(5)}`]
  if (d.pid) parts.push(`pid ${d.pid}`)
  if (e.type === 'bind.remapped') parts.push(`${d.from} -> ${d.to} (${d.service})`)
  else if (e.type === 'connect.followed') parts.push(`followed ${d.from} -> ${d.to}`)
  else if (d.service) parts.push(String(d.service))
  if (d.reason) parts.push(`[${d.reason}]`)
  // One event, one line: a command line may hold newlines (python -c 'a\nb').
  if (d.command) parts.push(String(d.command).replace(/\s+/g, ' '))
  if (d.project && (e.type.startsWith('bind.') || e.type === 'connect.followed')) parts.push(`in ${d.project}`)
  if (d.id && e.type.startsWith('instance.')) parts.push(String(d.id))
  return parts.join('  ')
}

/** The one line for a subscription the daemon closed, by its close code. */
export function closeNotice(code: number): string {
  if (code === CloseCodes.TOO_SLOW) return `(dropped by the daemon: this tail fell behind (close ${code}); reconnecting, events meanwhile are missed)`
  if (code === CloseCodes.DAEMON_STOPPING) return '(daemon stopping; reconnecting)'
  return '(daemon went away; reconnecting)'
}

/** The line for the first event after a reconnection to the same daemon run, when some went by meanwhile. */
export function gapNotice(lastSeq: number, seq: number): string | null {
  // A lower seq is a new daemon run (seq starts again): nothing to compare.
  return lastSeq > 0 && seq > lastSeq + 1 ? `(missed ${seq - lastSeq - 1} event(s) while away)` : null
}

/**
 * Follow the event stream until `stop` resolves, reconnecting with a doubling delay when the daemon goes
 * away (a restart keeps the tail alive). `notice` gets one line per connection change.
 */
export async function follow(client: StyxyClient, onEvent: (e: StyxyEvent) => void, notice: (line: string) => void, stop: Promise<void>): Promise<void> {
  let stopped = false
  void stop.then(() => { stopped = true })
  let delay = 100
  let connectedBefore = false
  let lastSeq = 0
  while (!stopped) {
    const ws = client.events()
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true))
      ws.once('error', () => resolve(false))
      ws.once('unexpected-response', () => resolve(false))
    })
    if (opened) {
      delay = 100
      if (connectedBefore) notice('(reconnected)')
      let first = connectedBefore
      connectedBefore = true
      ws.on('message', (data: Buffer) => {
        let e: StyxyEvent
        try {
          e = JSON.parse(data.toString()) as StyxyEvent
        } catch {
          return // a frame that is not an event is not ours to show
        }
        const gap = first ? gapNotice(lastSeq, e.seq) : null
        if (gap) notice(gap)
        first = false
        lastSeq = e.seq
        onEvent(e)
      })
      const code = await Promise.race([new Promise<number>((resolve) => ws.once('close', (c: number) => resolve(c))), stop.then(() => 0)])
      ws.removeAllListeners('close')
      ws.terminate()
      if (!stopped) notice(closeNotice(code))
    } else {
      ws.terminate()
      if (!connectedBefore && delay === 100) notice(`(waiting for the daemon at ${client.endpoint.socket})`)
    }
    if (stopped) break
    await Promise.race([new Promise((r) => setTimeout(r, delay)), stop])
    delay = Math.min(delay * 2, 2000)
  }
}
