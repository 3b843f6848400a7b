// A holder's exit, as an event: a pidfd per watched process, polled by the event loop, so the daemon hears
// of an exit within milliseconds and does nothing at all while nothing exits. Without pidfds (a kernel
// before 5.3, or the native addon missing) the reaper's periodic check is all there is.

export type ExitInterface = 'pidfd' | 'poll'

export interface ExitWatcher {
  readonly name: ExitInterface
  readonly reason: string | null
  /** False when no process has this pid now (it exited before it could be watched). */
  watch(pid: number): boolean
  readonly watching: number
}

/** What the addon offers for exits (kernel/addon.zig). */
export interface PidfdAddon {
  onExit(cb: (pids: number[]) => void): void
  watch(pid: number): boolean
  unwatch(pid: number): boolean
  watching(): number
}

export class PidfdExits implements ExitWatcher {
  readonly name = 'pidfd' as const
  readonly reason = null

  constructor(private readonly addon: PidfdAddon, onExit: (pids: number[]) => void) {
    addon.onExit(onExit)
  }

  watch(pid: number): boolean {
    return this.addon.watch(pid)
  }

  get watching(): number {
    return this.addon.watching()
  }
}

/** No exit events: every holder counts as watched, and the reaper finds the dead on its rounds. */
export class PolledExits implements ExitWatcher {
  readonly name = 'poll' as const
  readonly watching = 0
  constructor(readonly reason: string) {}
  watch(): boolean {
    return true
  }
}
