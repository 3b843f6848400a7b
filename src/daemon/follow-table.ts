import fs from 'node:fs'
import {followMoves, isMove, MAX_MOVES, type Move, type MoveSource} from '../core/follow.js'
import {projectHash} from '../shared/project.js'

// The writer of the follow table (docs/follow-table.md has the layout and the protocol). Processes under Styxy
// map the file MAP_SHARED and read it on connect(); a pwrite reaches every such mapping, so the file is only
// ever written in place: never truncated below its size, never replaced by a rename.

const MAGIC = 0x46595453
const VERSION = 1
const SEQ_AT = 8
const COUNT_AT = 12
const BITMAP_AT = 64
const BITMAP_SIZE = 8192
const ENTRY_SIZE = 16
export const FOLLOW_TABLE_SIZE = BITMAP_AT + BITMAP_SIZE + ENTRY_SIZE * MAX_MOVES

export interface FollowSource {
  /** Leases away from their asked port, with a project, newest first. */
  movedLeases(): MoveSource[]
  /** The project of the lease on a port, if any. */
  projectOn(port: number): string | null | undefined
}

export class FollowTable {
  private readonly body = Buffer.alloc(FOLLOW_TABLE_SIZE - BITMAP_AT)
  private readonly word = Buffer.alloc(4)
  /** What the file holds, as compared with the next set of moves; null: unknown (a write failed), write again. */
  private written: string | null = null
  /** Every asked port of a moved lease (followed or not): a lease coming or going there may change the moves. */
  private asked = new Set<number>()
  private failing = false

  private constructor(private readonly fd: number, private seq: number, private readonly source: FollowSource, private readonly log: (msg: string) => void) {}

  /**
   * Open (or create, 0600, at its full size) and write the table from the surviving leases. A file left by an
   * earlier daemon keeps its inode, so processes that mapped it keep seeing the moves; its seq goes on from
   * where it was, so a reader that read the old seq cannot take a new write's half for a whole one.
   */
  static open(file: string, source: FollowSource, log: (msg: string) => void): FollowTable {
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)
    try {
      fs.fchmodSync(fd, 0o600)
      const size = fs.fstatSync(fd).size
      const header = Buffer.alloc(BITMAP_AT)
      fs.readSync(fd, header, 0, Math.min(size, BITMAP_AT), 0)
      const ours = size >= BITMAP_AT && header.readUInt32LE(0) === MAGIC && header.readUInt32LE(4) === VERSION
      const seq = ours ? (header.readUInt32LE(SEQ_AT) + 1) & ~1 : 0
      // Written out rather than grown with ftruncate: a hole would need a block at the first move, and a full
      // disk would then fail that write instead of the daemon's start.
      if (size < FOLLOW_TABLE_SIZE) fs.writeSync(fd, Buffer.alloc(FOLLOW_TABLE_SIZE - size), 0, FOLLOW_TABLE_SIZE - size, size)
      else if (size > FOLLOW_TABLE_SIZE) fs.ftruncateSync(fd, FOLLOW_TABLE_SIZE)
      const table = new FollowTable(fd, seq >>> 0, source, log)
      table.write(table.moves(), true)
      return table
    } catch (error) {
      fs.closeSync(fd)
      throw error
    }
  }

  /** A lease was made or ended: rewrite the table when that may change the moves (it never does for most leases). */
  leaseChanged(l: MoveSource): void {
    if (isMove(l) || (l.project !== null && this.asked.has(l.port))) this.sync()
  }

  /** Rewrite the table if the moves differ from what it holds. */
  sync(): void {
    const moves = this.moves()
    if (keyOf(moves) !== this.written) this.write(moves, false)
  }

  close(): void {
    fs.closeSync(this.fd)
  }

  private moves(): Move[] {
    const moved = this.source.movedLeases()
    this.asked = new Set(moved.map((l) => l.requestedPort!))
    return followMoves(moved, (port) => this.source.projectOn(port))
  }

  // Each step one pwrite, in the order the readers rely on: seq odd, the body, count, seq even.
  private write(moves: Move[], header: boolean): void {
    const body = this.body.fill(0)
    moves.forEach((m, i) => {
      body[m.asked >> 3] |= 1 << (m.asked & 7)
      const at = BITMAP_SIZE + i * ENTRY_SIZE
      body.writeBigUInt64LE(projectHash(m.project), at)
      body.writeUInt16LE(m.asked, at + 8)
      body.writeUInt16LE(m.port, at + 10)
    })
    try {
      this.putWord(SEQ_AT, (this.seq + 1) >>> 0)
      if (header) {
        const h = Buffer.alloc(8)
        h.writeUInt32LE(MAGIC, 0)
        h.writeUInt32LE(VERSION, 4)
        fs.writeSync(this.fd, h, 0, 8, 0)
        fs.writeSync(this.fd, Buffer.alloc(BITMAP_AT - COUNT_AT - 4), 0, BITMAP_AT - COUNT_AT - 4, COUNT_AT + 4)
      }
      fs.writeSync(this.fd, body, 0, body.length, BITMAP_AT)
      this.putWord(COUNT_AT, moves.length)
      this.seq = (this.seq + 2) >>> 0
      this.putWord(SEQ_AT, this.seq)
      this.written = keyOf(moves)
      this.failing = false
    } catch (error) {
      // The table is a convenience: a failed write (the state directory gone read-only) must not fail the bind
      // that caused it. The next change writes it again; until then clients reach the asked ports as they are.
      this.written = null
      if (!this.failing) this.log(`follow table: ${(error as Error).message}`)
      this.failing = true
    }
  }

  private putWord(at: number, value: number): void {
    this.word.writeUInt32LE(value, 0)
    fs.writeSync(this.fd, this.word, 0, 4, at)
  }
}

function keyOf(moves: Move[]): string {
  return moves.map((m) => `${m.asked}>${m.port} ${m.project}`).join('\n')
}
