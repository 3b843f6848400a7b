import fs from 'node:fs'

// How `styxy run` takes its command down when it is told to stop. A wrapper like `npm run dev` does not pass
// signals on, so signalling the command alone left its servers running (and holding their leases).
//
// Not interactive (no terminal, or a background job): the command runs in a process group of its own (Node's
// `detached`, a new session), and the signal goes to that whole group, as foreman does; after a grace period,
// SIGKILL to whatever of the group is left.
// Interactive (this process is in its terminal's foreground group): the command stays in our group, so the
// terminal's Ctrl-C, Ctrl-Z and hang-up reach every process of it as they would without Styxy, and the
// command can read the terminal and open /dev/tty. A group of its own would not be the terminal's foreground
// group: it could not read the terminal, and Ctrl-C would reach only us. Giving it the foreground (tcsetpgrp,
// as tini does) needs native code between fork and exec, which Node does not offer, and breaks Ctrl-Z (the
// command stops; the shell keeps waiting on us). A signal sent to us alone (kill -TERM) goes to the command's
// whole process tree, as npm-run-all and concurrently do, and the same grace period ends with SIGKILL for what
// of that tree is left.

interface Proc {
  pid: number
  ppid: number
  pgrp: number
  ttyNr: number
  tpgid: number
  zombie: boolean
  start: number
}

function statOf(pid: number | string): Proc | null {
  let text: string
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return null
  }
  // comm (field 2) may hold spaces and ')': fields count from the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return {pid: Number(pid), ppid: Number(f[1]), pgrp: Number(f[2]), ttyNr: Number(f[4]), tpgid: Number(f[5]), zombie: f[0] === 'Z' || f[0] === 'X', start: Number(f[19])}
}

function everyProcess(): Proc[] {
  const out: Proc[] = []
  for (const name of fs.readdirSync('/proc')) {
    if (name.charCodeAt(0) < 0x30 || name.charCodeAt(0) > 0x39) continue
    const p = statOf(name)
    if (p) out.push(p)
  }
  return out
}

/** Whether this process is in the foreground process group of its controlling terminal. */
export function inTerminalForeground(pid = process.pid): boolean {
  const me = statOf(pid)
  return me !== null && me.ttyNr !== 0 && me.tpgid === me.pgrp
}

/** The live descendants of `pid` (by parent links, as they are now). */
function descendantsOf(pid: number, all: Proc[] = everyProcess()): Proc[] {
  const children = new Map<number, Proc[]>()
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p])
  const out: Proc[] = []
  const queue = [pid]
  while (queue.length) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c)
      queue.push(c.pid)
    }
  }
  return out.filter((p) => !p.zombie)
}

function send(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // Gone already (ESRCH), or not ours to signal.
  }
}

const POLL_MS = 25

/** The command's processes, and how to end them: a signal first, SIGKILL for what is left after `graceMs`. */
export class CommandProcesses {
  /** Interactive mode: the tree as it was at the first signal (processes may be reparented as their parents die). */
  private tree = new Map<number, number>()
  private deadline: number | null = null
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly pid: number, private readonly ownGroup: boolean, private readonly graceMs: number) {}

  /** Whether a stop was asked for (and so the grace period runs). */
  get stopping(): boolean {
    return this.deadline !== null
  }

  /**
   * Pass `signal` on to every process of the command. `delivered`: the terminal sent it to our whole
   * foreground group already (Ctrl-C): sending it again would make many tools skip their graceful shutdown.
   */
  signal(signal: NodeJS.Signals, delivered: boolean): void {
    if (this.deadline === null) {
      this.deadline = Date.now() + this.graceMs
      // The command may never exit by itself (a wrapper that ignores the signal, waiting on a server that does
      // too): the deadline is kept whether or not it does.
      this.timer = setTimeout(() => this.killLeft(), this.graceMs)
    }
    if (this.ownGroup) {
      if (!delivered) send(-this.pid, signal)
      return
    }
    for (const p of descendantsOf(process.pid)) {
      this.tree.set(p.pid, p.start)
      if (!delivered) send(p.pid, signal)
    }
  }

  private left(): number[] {
    if (this.ownGroup) {
      // A cheap look first: kill(-pgid, 0) fails once nothing of the group exists, not even a zombie.
      try {
        process.kill(-this.pid, 0)
      } catch {
        return []
      }
      return everyProcess().filter((p) => p.pgrp === this.pid && !p.zombie).map((p) => p.pid)
    }
    const all = everyProcess()
    const byPid = new Map(all.map((p) => [p.pid, p]))
    const out = new Set(descendantsOf(process.pid, all).map((p) => p.pid))
    for (const [pid, start] of this.tree) {
      const p = byPid.get(pid)
      if (p && !p.zombie && p.start === start) out.add(pid)
    }
    return [...out]
  }

  private killLeft(): void {
    if (this.ownGroup) send(-this.pid, 'SIGKILL')
    else for (const pid of this.left()) send(pid, 'SIGKILL')
  }

  /**
   * Once stopping, after the command itself has exited: resolves when none of its processes is left, killing
   * the rest at the deadline. Not stopping: at once (what a command leaves behind on its own is its business).
   */
  async ended(): Promise<void> {
    if (this.deadline === null) return
    try {
      while (this.left().length > 0) {
        if (Date.now() >= this.deadline) return this.killLeft()
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
      }
    } finally {
      clearTimeout(this.timer)
    }
  }
}

/** The grace period in ms: `--grace` (checked by the command) or STYXY_RUN_GRACE, in seconds; 5 s by default or for a bad value. */
export function graceMs(flag: number | undefined, env: NodeJS.ProcessEnv): number {
  const s = flag ?? (env.STYXY_RUN_GRACE ? Number(env.STYXY_RUN_GRACE) : NaN)
  return Number.isFinite(s) && s >= 0 ? Math.round(s * 1000) : 5000
}
