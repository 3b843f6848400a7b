import crypto from 'node:crypto'

// The dashboard's credentials, in the daemon's memory only: a restart logs every browser out (the page says so
// and `styxy dashboard` logs in again). Nothing here is written to disk, so nothing outlives the daemon.

/** How long a login link works: long enough to click it, short enough that a link in a scrollback is dead. */
export const LOGIN_CODE_MS = 60_000
/** A session lasts this long after its last use: a tab left open through a working day keeps working. */
export const SESSION_IDLE_MS = 12 * 60 * 60 * 1000
/** Codes and sessions kept at once: a runaway script asking for links cannot grow the daemon's memory. */
const MAX_KEPT = 64

/** 32 random bytes as base64url: 43 characters, unguessable. */
export function randomSecret(): string {
  return crypto.randomBytes(32).toString('base64url')
}

/** Expiry by key, oldest dropped first when full (a Map keeps insertion order). */
class Expiring {
  private readonly until = new Map<string, number>()
  constructor(private readonly now: () => number) {}

  add(key: string, ms: number): number {
    this.sweep()
    if (this.until.size >= MAX_KEPT) this.until.delete(this.until.keys().next().value!)
    const at = this.now() + ms
    this.until.set(key, at)
    return at
  }

  /** Whether `key` is live now; a lookup never throws and never tells a near miss from a wild guess. */
  live(key: string): boolean {
    const at = this.until.get(key)
    if (at === undefined) return false
    if (at > this.now()) return true
    this.until.delete(key)
    return false
  }

  delete(key: string): boolean {
    return this.until.delete(key)
  }

  /** Re-inserted so that the most recently used go last (and the least recently used first when full). */
  touch(key: string, ms: number): void {
    this.until.delete(key)
    this.until.set(key, this.now() + ms)
  }

  private sweep(): void {
    const now = this.now()
    for (const [key, at] of this.until) if (at <= now) this.until.delete(key)
  }
}

export class DashboardSessions {
  private readonly codes: Expiring
  private readonly sessions: Expiring

  constructor(now: () => number = Date.now) {
    this.codes = new Expiring(now)
    this.sessions = new Expiring(now)
  }

  /** A new one-time login code and when it stops working. */
  newCode(): {code: string; expiresAt: number} {
    const code = randomSecret()
    return {code, expiresAt: this.codes.add(code, LOGIN_CODE_MS)}
  }

  /** Trade a live code for a new session id; the code is spent whatever happens next. Null: no such live code. */
  redeem(code: string): string | null {
    const ok = this.codes.live(code)
    this.codes.delete(code)
    if (!ok) return null
    const id = randomSecret()
    this.sessions.add(id, SESSION_IDLE_MS)
    return id
  }

  /** Whether a session id is live; using it extends it. */
  check(id: string | undefined): boolean {
    if (id === undefined || !this.sessions.live(id)) return false
    this.sessions.touch(id, SESSION_IDLE_MS)
    return true
  }
}
