import crypto from 'node:crypto'
import fs from 'node:fs'
import Database from 'better-sqlite3'
import type {StyxyPaths} from '../paths.js'
import {prepareStateDir as prepareDir} from '../shared/state-dir-trust.js'

/**
 * The state directory is private to its user: 0700, whatever umask or an earlier run left. One that is a
 * link, another user's, or writable by others is refused (UnsafeStateDirError), never repaired: what is in it
 * may not be ours. True when one of ours was tightened.
 */
export function prepareStateDir(paths: StyxyPaths): boolean {
  return prepareDir(paths.stateDir)
}

/** The TCP token: created once, 0600, never logged. */
export function ensureToken(file: string): string {
  try {
    const existing = fs.readFileSync(file, 'utf8').trim()
    if (existing.length >= 32) {
      fs.chmodSync(file, 0o600)
      return existing
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const token = crypto.randomBytes(32).toString('hex')
  // Write-then-rename so a reader never sees a half-written token.
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, `${token}\n`, {mode: 0o600})
  fs.renameSync(tmp, file)
  return token
}

/** Exit 1 from the daemon's entry, which the starter takes as "use the one that runs" (src/daemon/main.ts). */
export class AlreadyRunningError extends Error {
  readonly code = 'ALREADY_RUNNING'
}

/**
 * One daemon per state directory. An open write transaction on a small SQLite file is a POSIX lock the
 * kernel drops when the process dies (even by kill -9), so a crash never leaves a stale lock behind and
 * two daemons starting at once cannot both win.
 */
export function acquireDaemonLock(file: string): Database.Database {
  const db = new Database(file, {timeout: 0})
  try {
    db.pragma('journal_mode = DELETE')
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)')
    db.exec('BEGIN EXCLUSIVE')
    db.prepare('DELETE FROM holder').run()
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid)
    return db
  } catch (error) {
    db.close()
    if ((error as {code?: string}).code === 'SQLITE_BUSY') throw new AlreadyRunningError('another Styxy daemon holds this state directory')
    throw error
  }
}
