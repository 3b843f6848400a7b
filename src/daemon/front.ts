import {spawn, type ChildProcess} from 'node:child_process'
import fs from 'node:fs'
import type net from 'node:net'
import type {FrontStatus} from '../protocol/types.js'

// The native front (front/main.zig) takes the interceptor's connections on its own Unix socket and hands us
// their requests over one link, many per read: Node's cost per connection (~200 µs of CPU before our code sees
// a byte) was the larger part of a bind's added latency and the ceiling on decisions/s. The front judges
// nothing; every answer is still written here. The interceptor falls back to the daemon's socket whenever the
// front's is missing or gives no answer, so a front that is off, dead or restarting costs speed, never a bind.

/** Frames both ways: u32 payload length, u32 id (little-endian), payload. Id 0 is the front's "ready", id 1 ping/pong. */
const HEADER = 8
const READY_ID = 0
/** The daemon's "ping" and the front's "pong" (front/link.zig). */
const PING_ID = 1
/** The front's requests are at most 8 KB; anything bigger on the link is a broken front. */
const MAX_FRAME = 64 * 1024
/** How long a started front has to say it listens before it is given up on (and retried). */
const READY_MS = 3000

/** Answers one request the front forwarded, as a whole HTTP response: in the same turn when it can. */
export type FrontServe = (request: Buffer) => string | Promise<string>

export interface FrontOptions {
  binary: string
  socket: string
  serve: FrontServe
  log: (msg: string) => void
  /** How often the front is asked whether it still answers; three missed in a row and it is replaced. */
  pingMs: number
}

export class Front {
  private child: ChildProcess | undefined
  private answered = 0
  private restarts = 0
  private stopped = false
  private retry: NodeJS.Timeout | undefined
  private failures = 0
  /** Not built, or its socket path cannot be taken: not retried, and reported as off. */
  private gaveUp = false
  /** The current child has said "ready". */
  private listening = false

  constructor(private readonly options: FrontOptions) {}

  /** Resolves once the front listens, or false when it could not be started (the daemon serves on regardless). */
  start(): Promise<boolean> {
    const {binary, socket, log, pingMs} = this.options
    if (!fs.existsSync(binary)) {
      log(`native front ${binary} not found (run make): binds are answered on the daemon's socket alone`)
      this.gaveUp = true
      return Promise.resolve(false)
    }
    // A crash's leftover, or the last front's: we hold the daemon lock, so nothing else is listening there.
    try {
      fs.rmSync(socket, {force: true})
    } catch (error) {
      log(`native front not started: cannot remove ${socket} (${(error as Error).message}); binds are answered on the daemon's socket`)
      this.gaveUp = true
      return Promise.resolve(false)
    }
    const child = spawn(binary, [socket], {
      // fd 3 is the link: libuv makes a 'pipe' a socketpair. stderr is the daemon's log.
      stdio: ['ignore', 'ignore', 'inherit', 'pipe'],
      env: {},
      // Its own session: a ^C at a foreground daemon's terminal is the daemon's to handle, not the front's.
      detached: true,
    })
    this.child = child
    this.listening = false
    // Absent when the spawn itself failed (out of fds, say): Node reports that as 'error', below.
    const link = child.stdio[3] as net.Socket | undefined
    const startedAt = Date.now()
    return new Promise((resolve) => {
      let ended = false
      let lastPong = Date.now()
      const timer = setTimeout(() => {
        log(`native front pid ${child.pid}: not listening after ${READY_MS} ms; stopping it`)
        child.kill('SIGKILL')
      }, READY_MS)
      // A front that is stopped or stuck still has its connections queued by the kernel, and the interceptor
      // would give it half of each bind's time bound before asking the daemon's socket: one that does not
      // answer a ping in time is replaced.
      const pinger = setInterval(() => {
        if (!this.listening || link === undefined || link.destroyed) return
        if (Date.now() - lastPong > pingMs * 3) {
          log(`native front pid ${child.pid}: no answer to a ping for ${Date.now() - lastPong} ms; replacing it`)
          child.kill('SIGKILL')
          return
        }
        link.write(frameOf(PING_ID, 'ping'))
      }, pingMs)
      pinger.unref()
      // After 'error' (a failed spawn) Node may or may not emit 'close': whichever comes first ends this front.
      const end = (how: string) => {
        if (ended) return
        ended = true
        clearTimeout(timer)
        clearInterval(pinger)
        if (this.child === child) this.child = undefined
        if (!this.listening) resolve(false)
        this.listening = false
        if (this.stopped) return
        // A front that dies young is retried ever more slowly, so a broken binary does not spin.
        this.failures = Date.now() - startedAt < 10_000 ? this.failures + 1 : 0
        const delay = Math.min(10_000, 100 * 2 ** Math.min(this.failures, 7))
        log(`native front ${how}; starting it again in ${delay} ms (binds use the daemon's socket meanwhile)`)
        this.retry = setTimeout(() => {
          this.restarts++
          void this.start()
        }, delay)
        this.retry.unref()
      }
      child.on('error', (error) => end(`failed: ${error.message}`))
      child.on('close', (code, signal) => end(`exited (${signal ?? `code ${code}`})`))
      child.unref()
      if (link === undefined) return
      link.on('error', () => { /* the child's exit says what happened */ })
      link.unref()
      this.readFrames(link, (id, payload) => {
        if (id === PING_ID) {
          lastPong = Date.now()
        } else if (id !== READY_ID) {
          this.answer(link, id, payload)
        } else {
          this.listening = true
          lastPong = Date.now()
          clearTimeout(timer)
          resolve(true)
        }
      }, (why) => {
        log(`native front pid ${child.pid}: ${why}; stopping it`)
        child.kill('SIGKILL')
      })
    })
  }

  /** Null when it is off for good (see gaveUp); a null pid until it listens (being started, or again). */
  get status(): FrontStatus | null {
    if (this.gaveUp) return null
    return {pid: this.listening ? this.child?.pid ?? null : null, socket: this.options.socket, answered: this.answered, restarts: this.restarts}
  }

  /** The front exits when its link closes; SIGTERM too, so one that is stuck goes as well. Its socket goes with it. */
  stop(): void {
    this.stopped = true
    clearTimeout(this.retry)
    if (this.child) {
      this.child.kill('SIGTERM')
      ;(this.child.stdio[3] as net.Socket | undefined)?.destroy()
      fs.rmSync(this.options.socket, {force: true})
    }
  }

  private readFrames(link: net.Socket, onFrame: (id: number, payload: Buffer) => void, broken: (why: string) => void): void {
    let pending: Buffer = Buffer.alloc(0)
    link.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
      let off = 0
      // The answers decided while this read is taken apart go back in one write.
      link.cork()
      try {
        while (pending.length - off >= HEADER) {
          const len = pending.readUInt32LE(off)
          if (len > MAX_FRAME) return broken(`a ${len}-byte frame on the link`)
          if (pending.length - off - HEADER < len) break
          const id = pending.readUInt32LE(off + 4)
          const payload = pending.subarray(off + HEADER, off + HEADER + len)
          off += HEADER + len
          onFrame(id, payload)
        }
      } finally {
        link.uncork()
      }
      pending = pending.subarray(off)
    })
  }

  private corked = false

  private answer(link: net.Socket, id: number, request: Buffer): void {
    let text: string | Promise<string>
    try {
      text = this.options.serve(request)
    } catch (error) {
      return this.bug(error)
    }
    if (typeof text === 'string') return this.send(link, id, text)
    text.then((later) => {
      // Answers that had to wait (for a read of the kernel's tables) and are decided in one turn: one write.
      if (!this.corked && !link.destroyed) {
        this.corked = true
        link.cork()
        process.nextTick(() => {
          this.corked = false
          link.uncork()
        })
      }
      this.send(link, id, later)
    }, (error: unknown) => this.bug(error))
  }

  /** serve() answers every failure it knows of; a throw is a bug, and must not take the daemon down. */
  private bug(error: unknown): void {
    this.options.log(`internal error answering the native front: ${(error as Error)?.stack ?? error}`)
  }

  private send(link: net.Socket, id: number, text: string): void {
    if (link.destroyed) return
    this.answered++
    link.write(frameOf(id, text))
  }
}

function frameOf(id: number, text: string): Buffer {
  const frame = Buffer.allocUnsafe(HEADER + Buffer.byteLength(text))
  frame.writeUInt32LE(frame.length - HEADER, 0)
  frame.writeUInt32LE(id, 4)
  frame.write(text, HEADER)
  return frame
}
