/** One TCP socket as the kernel addon reports it (kernel/addon.zig documents the 32-byte record). */
export interface KernelSocket {
  family: 'ipv4' | 'ipv6'
  /** The kernel's TCP state: 1 ESTABLISHED, 6 TIME_WAIT, 7 CLOSE (bound, not listening), 10 LISTEN, ... */
  state: number
  port: number
  /** 0 for TIME_WAIT and SYN_RECV entries, which no longer have an owner. */
  uid: number
  inode: number
  /** As Node prints it: '127.0.0.1', '::1', '::', '::ffff:127.0.0.1'. */
  address: string
}

export const RECORD_LENGTH = 32

export function decodeSockets(records: Buffer): KernelSocket[] {
  if (records.length % RECORD_LENGTH !== 0) throw new Error(`kernel records: ${records.length} bytes is not a whole number of records`)
  const out: KernelSocket[] = []
  for (let at = 0; at < records.length; at += RECORD_LENGTH) {
    const v6 = records[at] === 6
    const address = records.subarray(at + 16, at + (v6 ? 32 : 20))
    out.push({
      family: v6 ? 'ipv6' : 'ipv4',
      state: records[at + 1],
      port: records.readUInt16LE(at + 2),
      uid: records.readUInt32LE(at + 4),
      inode: records.readUInt32LE(at + 8),
      address: v6 ? ipv6Text(address) : address.join('.'),
    })
  }
  return out
}

/**
 * RFC 5952 text, as libuv (and so Node) writes it: lowercase hex without leading zeros, the longest run of
 * two or more zero groups (the first of equals) as '::', and the last 32 bits dotted for IPv4-mapped
 * (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, the first 96 bits zero, not '::' or '::1') addresses.
 */
export function ipv6Text(bytes: Uint8Array): string {
  const groups = Array.from({length: 8}, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1])
  let best = {at: -1, length: 0}
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > best.length) best = {at: i, length: j - i}
    i = j
  }
  if (best.length < 2) best = {at: -1, length: 0}
  const dotted = best.at === 0 && (best.length === 6 || (best.length === 5 && groups[5] === 0xffff))
  const hexGroups = dotted ? 6 : 8
  let text = ''
  for (let i = 0; i < hexGroups; i++) {
    if (i === best.at) {
      text += i === 0 ? '::' : ':'
      i += best.length - 1
      continue
    }
    text += groups[i].toString(16) + (i < 7 ? ':' : '')
  }
  if (dotted) text += `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`
  return text
}
