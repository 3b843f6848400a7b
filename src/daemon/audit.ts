import fs from 'node:fs'
import type {Reassignment} from '../protocol/types.js'

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

/** One move as a line of reassignments.log, in local time: the file is for people reading it with `tail`. */
export function auditLine(at: Date, pid: number, from: number, to: number, service: string): string {
  const stamp = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`
  return `[${stamp}] PID ${pid}: Port ${from} -> ${to} (service: ${service})\n`
}

export function appendAudit(file: string, now: number, r: Reassignment): void {
  try {
    fs.appendFileSync(file, auditLine(new Date(now), r.pid, r.from, r.to, r.service), {mode: 0o600})
  } catch {
    // The audit file is a convenience copy; the reassignments table is the record. A full disk must not fail a bind.
  }
}
