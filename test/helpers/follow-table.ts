// A follow table (docs/follow-table.md) written the way the daemon writes it: created at full size, then
// rewritten in place, seq odd, bitmap and entries, count, seq even, one write each. For the tests and the
// bench that drive the interceptor's reader on its own, without a daemon deciding the moves.
import fs from 'node:fs'
import path from 'node:path'
import {projectHash} from '../../src/shared/project.js'

export const TABLE_SIZE = 24_640
const BITMAP = 64
const ENTRIES = 8256

/** A server of `project` that asked for `asked` and listens on `port`. */
export interface Move {project: string; asked: number; port: number}

export class FollowTable {
  private seq = 0

  private constructor(private readonly fd: number) {}

  /** `<home>/follow`, where the interceptor looks with STYXY_HOME=home. */
  static create(home: string, moves: Move[] = []): FollowTable {
    const fd = fs.openSync(path.join(home, 'follow'), 'w+', 0o600)
    const head = Buffer.alloc(BITMAP)
    head.writeUInt32LE(0x46595453, 0)
    head.writeUInt32LE(1, 4)
    fs.writeSync(fd, head, 0, head.length, 0)
    fs.ftruncateSync(fd, TABLE_SIZE)
    const table = new FollowTable(fd)
    table.write(moves)
    return table
  }

  write(moves: Move[]): void {
    const body = Buffer.alloc(TABLE_SIZE - BITMAP)
    moves.forEach((m, i) => {
      body[m.asked >> 3] |= 1 << (m.asked & 7)
      const at = ENTRIES - BITMAP + i * 16
      body.writeBigUInt64LE(projectHash(m.project), at)
      body.writeUInt16LE(m.asked, at + 8)
      body.writeUInt16LE(m.port, at + 10)
    })
    this.setSeq(this.seq + 1)
    fs.writeSync(this.fd, body, 0, body.length, BITMAP)
    const count = Buffer.alloc(4)
    count.writeUInt32LE(moves.length)
    fs.writeSync(this.fd, count, 0, 4, 12)
    this.setSeq(this.seq + 1)
  }

  close(): void {
    fs.closeSync(this.fd)
  }

  private setSeq(seq: number): void {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(seq)
    fs.writeSync(this.fd, b, 0, 4, 8)
    this.seq = seq
  }
}
