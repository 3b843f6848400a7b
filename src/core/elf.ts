// What an executable's ELF headers say about how it binds: through a dynamic libc (LD_PRELOAD reaches it)
// or not (static, or Go, whose runtime makes system calls itself even when dynamically linked).

/** Reads `length` bytes at `offset`; shorter at end of file. */
export type ReadAt = (offset: number, length: number) => Uint8Array

export interface ElfFacts {
  bits: 32 | 64
  /** Has a PT_INTERP: started by a dynamic loader, so LD_PRELOAD applies. */
  dynamic: boolean
  /** Go's build-info or build-id section is present. */
  go: boolean
  /** The interpreter's path, when dynamic. */
  interpreter?: string
}

const PT_INTERP = 3
const GO_SECTIONS = new Set(['.go.buildinfo', '.note.go.buildid', '.gopclntab'])
/** Header tables bigger than this are not a real executable's: refuse rather than read megabytes. */
const MAX_TABLE = 1 << 20

export function isElf(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46
}

/** Null for anything that is not a well-formed ELF file. */
export function inspectElf(read: ReadAt): ElfFacts | null {
  const ident = read(0, 64)
  if (!isElf(ident) || ident.length < 52) return null
  const bits = ident[4] === 2 ? 64 : ident[4] === 1 ? 32 : 0
  const little = ident[5] === 1
  if (!bits || (ident[5] !== 1 && ident[5] !== 2)) return null
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength)
  const h = view(ident)
  const u16 = (v: DataView, o: number) => v.getUint16(o, little)
  const u32 = (v: DataView, o: number) => v.getUint32(o, little)
  const word = (v: DataView, o: number) => (bits === 64 ? Number(v.getBigUint64(o, little)) : u32(v, o))

  const phoff = word(h, bits === 64 ? 32 : 28)
  const shoff = word(h, bits === 64 ? 40 : 32)
  const at = bits === 64 ? 54 : 42
  const [phentsize, phnum, shentsize, shnum, shstrndx] = [u16(h, at), u16(h, at + 2), u16(h, at + 4), u16(h, at + 6), u16(h, at + 8)]

  let interpreter: string | undefined
  if (phoff && phnum && phentsize * phnum <= MAX_TABLE) {
    const ph = read(phoff, phentsize * phnum)
    const pv = view(ph)
    for (let i = 0; i < phnum && (i + 1) * phentsize <= ph.length; i++) {
      const o = i * phentsize
      if (u32(pv, o) !== PT_INTERP) continue
      const off = word(pv, bits === 64 ? o + 8 : o + 4)
      const size = word(pv, bits === 64 ? o + 32 : o + 16)
      interpreter = Buffer.from(read(off, Math.min(size, 4096))).toString('latin1').replace(/\0.*$/s, '')
      break
    }
  }

  let go = false
  if (shoff && shnum && shstrndx < shnum && shentsize * shnum <= MAX_TABLE) {
    const sh = read(shoff, shentsize * shnum)
    const sv = view(sh)
    const sectionAt = (i: number) => ({
      name: u32(sv, i * shentsize),
      offset: word(sv, i * shentsize + (bits === 64 ? 24 : 16)),
      size: word(sv, i * shentsize + (bits === 64 ? 32 : 20)),
    })
    if ((shstrndx + 1) * shentsize <= sh.length) {
      const strtab = sectionAt(shstrndx)
      const names = Buffer.from(read(strtab.offset, Math.min(strtab.size, MAX_TABLE)))
      for (let i = 0; i < shnum && (i + 1) * shentsize <= sh.length && !go; i++) {
        const start = sectionAt(i).name
        const end = names.indexOf(0, start)
        go = GO_SECTIONS.has(names.toString('latin1', start, end < 0 ? names.length : end))
      }
    }
  }
  return {bits: bits as 32 | 64, dynamic: interpreter !== undefined, go, interpreter}
}

/** `#!interpreter [arg]` as the kernel reads it: one optional argument, the rest of the line. */
export function parseShebang(head: Uint8Array): {interpreter: string; arg?: string} | null {
  if (head[0] !== 0x23 || head[1] !== 0x21) return null
  const text = Buffer.from(head).toString('latin1')
  const line = text.slice(2, text.includes('\n') ? text.indexOf('\n') : undefined).trim()
  if (!line) return null
  const space = line.search(/[ \t]/)
  if (space < 0) return {interpreter: line}
  return {interpreter: line.slice(0, space), arg: line.slice(space).trim() || undefined}
}
