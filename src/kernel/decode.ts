import type {DiagSocket} from './tables.js'

// The addon's answer (kernel/addon.zig): 32-byte records, little-endian:
// family u8 (4|6), state u8, port u16, uid u32, inode u32, reserved u32, address 16 bytes (network order).
const RECORD = 32

function ipv6Text(b: Buffer, at: number): string {
  if (b.readUInt32BE(at) === 0 && b.readUInt32BE(at + 4) === 0 && b.readUInt32BE(at + 8) === 0xffff) {
    return `::ffff:${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`
  }
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(at + i))
  // The longest run of zero groups (two or more) becomes "::", as Node and inet_ntop print it.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) [best, bestLen] = [i, j - i]
    i = j === i ? i + 1 : j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

export function decodeSockets(records: Buffer): DiagSocket[] {
  const out: DiagSocket[] = []
  for (let at = 0; at + RECORD <= records.length; at += RECORD) {
    const v4 = records[at] === 4
    out.push({
      family: v4 ? 'ipv4' : 'ipv6', state: records[at + 1], port: records.readUInt16LE(at + 2),
      uid: records.readUInt32LE(at + 4), inode: records.readUInt32LE(at + 8),
      address: v4 ? `${records[at + 16]}.${records[at + 17]}.${records[at + 18]}.${records[at + 19]}` : ipv6Text(records, at + 16),
    })
  }
  return out
}
