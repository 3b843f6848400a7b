/**
 * The one line a daemon started detached tells its starter, on the pipe STYXY_READY_FD names: ready (its pid and
 * listeners), or that another daemon already holds the state directory. Said on the pipe, not left to the log:
 * the log is shared by every daemon started for the directory, so its last line may be another one's
 * (four starters at once read "listening" there and took a loser's exit 1 for a crash).
 */
export type ReadyLine =
  | {pid: number; port: number | null; socket: string}
  | {alreadyRunning: true; message: string}

export function parseReadyLine(text: string): ReadyLine {
  return JSON.parse(text) as ReadyLine
}
