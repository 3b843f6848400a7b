import fs from 'node:fs'
import net from 'node:net'

// A busy host, made on purpose: loopback connections opened and closed by the client first, so each leaves a
// TIME_WAIT socket in this network namespace's table for a minute (what a load test, a browser session or a
// CI runner leaves behind). Bounded in count and time; stops by itself.

/** Sockets in TIME_WAIT in /proc/net/tcp{,6} now. */
export function timeWaitCount(): number {
  return socketsInState('06')
}

/** Sockets in one TCP state (hex, as /proc prints it: 06 TIME_WAIT, 0A LISTEN) in /proc/net/tcp{,6} now. */
export function socketsInState(state: string): number {
  let n = 0
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try { text = fs.readFileSync(file, 'latin1') } catch { continue }
    for (const line of text.split('\n').slice(1)) if (line.trim().split(/\s+/)[3] === state) n++
  }
  return n
}

/** Open and close `count` loopback connections (`parallel` at a time), within `deadlineMs`; resolves with how many closed. */
export async function fillTimeWait(count: number, deadlineMs = 60_000, parallel = 128): Promise<number> {
  // Several servers: on loopback the kernel reuses a TIME_WAIT pair for a new connection to the same address
  // (tcp_tw_reuse), so one destination plateaus well below the ephemeral range's size.
  const servers = await Promise.all(Array.from({length: 8}, async () => {
    const server = net.createServer((s) => {
      s.on('error', () => {})
      s.on('end', () => s.end())
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return server
  }))
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  const end = Date.now() + deadlineMs
  let started = 0
  let closed = 0
  const one = (): Promise<void> => new Promise((resolve) => {
    const c = net.connect(ports[started % ports.length], '127.0.0.1')
    c.on('error', () => resolve())
    // The client closes first: the TIME_WAIT is its socket's, on an ephemeral port, as with any HTTP client.
    c.on('connect', () => c.end())
    c.on('close', () => { closed++; resolve() })
    c.resume()
  })
  const worker = async () => {
    while (started < count && Date.now() < end) {
      started++
      await one()
    }
  }
  await Promise.all(Array.from({length: parallel}, worker))
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  return closed
}

/**
 * At least `want` TIME_WAIT sockets now, and `margin` more. Those already in the table may be an earlier test's
 * and expire within their minute while new ones are made (a fill topped up to 20,500 once read 19,976 right
 * after), so it counts again after each fill, a few rounds at most. Resolves with the last count.
 */
export async function keepTimeWait(want: number, margin = 500): Promise<number> {
  for (let round = 0; round < 4; round++) {
    const now = timeWaitCount()
    if (now >= want + margin) return now
    await fillTimeWait(want + 2 * margin - now)
  }
  return timeWaitCount()
}
