import fs from 'node:fs'

// The kernel's TCP tables as /proc/net/tcp{,6} print them. Shared by the daemon (socket-table.ts) and the
// client, which checks a listener's owner before it sends the token and must not load the daemon's code.

const LISTEN = '0A'

export interface RawListener {
  port: number
  address: string
  family: 'ipv4' | 'ipv6'
  inode: number
  /** The owner's uid, as the kernel records it. */
  uid: number
}

function hexToIpv4(hex: string): string {
  // /proc prints the address as a host-order u32: little-endian on every Linux target Styxy runs on.
  const n = parseInt(hex, 16)
  return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}`
}

function hexToIpv6(hex: string): string {
  const bytes: number[] = []
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8)
    for (let b = 3; b >= 0; b--) bytes.push(parseInt(word.slice(b * 2, b * 2 + 2), 16))
  }
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255) {
    return `::ffff:${bytes.slice(12).join('.')}`
  }
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16))
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::')
}

/**
 * The listeners of one /proc/net/tcp{,6} text. `busy` collects the local port of every other socket
 * (connections, TIME_WAIT): a server that binds without SO_REUSEADDR fails on those ports for a minute after
 * the last server there closed, so a fresh port is never chosen among them.
 */
export function parseProcNet(text: string, family: 'ipv4' | 'ipv6', busy?: Set<number>): RawListener[] {
  const addrLen = family === 'ipv4' ? 8 : 32
  const out: RawListener[] = []
  let start = text.indexOf('\n') + 1 // skip the header
  while (start > 0 && start < text.length) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    const colon = text.indexOf(':', start)
    // Fixed layout: "sl: LOCAL:PORT REMOTE:PORT ST": check the state before splitting the line.
    const local = colon + 2
    const stateAt = local + 2 * (addrLen + 6)
    const listening = colon > 0 && colon < end && text.slice(stateAt, stateAt + 2) === LISTEN
    if (!listening && busy && colon > 0 && stateAt < end) {
      const port = parseInt(text.slice(local + addrLen + 1, local + addrLen + 5), 16)
      if (port > 0) busy.add(port)
    }
    if (listening) {
      const fields = text.slice(start, end).trim().split(/\s+/)
      const [addrHex, portHex] = fields[1].split(':')
      const address = family === 'ipv4' ? hexToIpv4(addrHex) : hexToIpv6(addrHex)
      out.push({port: parseInt(portHex, 16), address, family, inode: Number(fields[9]), uid: Number(fields[7])})
    }
    start = end + 1
  }
  return out
}

/**
 * Is the IPv4 listener on host:port (or on the wildcard) owned by this user? Port 9876 is one port for every
 * user of the machine: the token must never be sent to another user's listener there.
 */
export function tcpListenerIsOurs(host: string, port: number): boolean {
  let text: string
  try {
    text = fs.readFileSync('/proc/net/tcp', 'latin1')
  } catch {
    return false
  }
  return parseProcNet(text, 'ipv4').some(isOurListener(host, port))
}

/** The test both ways of asking apply: an IPv4 listener on host:port, or on the wildcard, of this user. */
export function isOurListener(host: string, port: number): (l: {address: string; port: number; uid: number}) => boolean {
  const uid = process.geteuid?.() ?? -1
  const address = host === 'localhost' ? '127.0.0.1' : host
  return (l) => l.port === port && (l.address === address || l.address === '0.0.0.0') && l.uid === uid
}

/** One end of a TCP connection, as Node prints it. */
export interface Endpoint {
  address: string
  port: number
}

/**
 * The owner's uid of the socket whose local end is `local` and whose peer is `remote`, in one /proc/net/tcp{,6}
 * text; null when there is none (or only a TIME_WAIT or SYN_RECV entry, which have no owner left).
 */
export function connectionUid(text: string, local: Endpoint, remote: Endpoint): number | null {
  const family = local.address.includes(':') ? 'ipv6' : 'ipv4'
  const endpoint = (field: string) => {
    const [hex, port] = field.split(':')
    return {address: family === 'ipv4' ? hexToIpv4(hex) : hexToIpv6(hex), port: parseInt(port, 16)}
  }
  const same = (a: Endpoint, b: Endpoint) => a.port === b.port && a.address === b.address
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields.length < 8 || !same(endpoint(fields[1]), local) || !same(endpoint(fields[2]), remote)) continue
    // TIME_WAIT and SYN_RECV entries have no owner left.
    if (fields[3] === '06' || fields[3] === '03') return null
    return Number(fields[7])
  }
  return null
}
