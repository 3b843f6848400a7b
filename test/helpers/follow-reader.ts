import fs from 'node:fs'

// An independent reader of the follow table, written from docs/follow-table.md alone (not from the daemon's
// writer): offsets, sizes and the hash are spelled out here again on purpose.

export const TABLE_SIZE = 24640
const MAGIC = 0x46595453

export interface FollowEntry {
  project: bigint
  asked: number
  port: number
}

export interface FollowSnapshot {
  magic: number
  version: number
  seq: number
  count: number
  /** The ports whose bit is set. */
  bits: number[]
  entries: FollowEntry[]
}

/** FNV-1a 64 of the UTF-8 bytes. */
export function fnv1a64(text: string): bigint {
  let h = 0xcbf29ce484222325n
  for (const byte of Buffer.from(text, 'utf8')) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn
  return h
}

export function parseTable(buf: Buffer): FollowSnapshot {
  const count = buf.readUInt32LE(12)
  const bits: number[] = []
  for (let i = 0; i < 8192; i++) {
    const byte = buf[64 + i]
    for (let b = 0; b < 8; b++) if (byte & (1 << b)) bits.push(i * 8 + b)
  }
  const entries: FollowEntry[] = []
  for (let i = 0; i < Math.min(count, 1024); i++) {
    const at = 8256 + 16 * i
    entries.push({project: buf.readBigUInt64LE(at), asked: buf.readUInt16LE(at + 8), port: buf.readUInt16LE(at + 10)})
  }
  return {magic: buf.readUInt32LE(0), version: buf.readUInt32LE(4), seq: buf.readUInt32LE(8), count, bits, entries}
}

/** The whole file in one read (the daemon is quiet in the tests that use this: no write can be under way). */
export function readTable(file: string): FollowSnapshot {
  const buf = fs.readFileSync(file)
  if (buf.length !== TABLE_SIZE) throw new Error(`${file} is ${buf.length} bytes, not ${TABLE_SIZE}`)
  const s = parseTable(buf)
  if (s.magic !== MAGIC || s.version !== 1) throw new Error(`${file}: magic ${s.magic.toString(16)}, version ${s.version}`)
  return s
}

/** Bit P is set exactly when some entry asked for P, and no entry is beyond count. */
export function isConsistent(s: FollowSnapshot): boolean {
  const asked = [...new Set(s.entries.map((e) => e.asked))].sort((x, y) => x - y)
  return JSON.stringify(asked) === JSON.stringify(s.bits)
}
