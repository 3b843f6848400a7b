// One map for every command, documented in docs/cli.md.
export const ExitCode = {
  OK: 0,
  /** A negative answer: the port is taken, the daemon is not running, a doctor check failed. */
  NO: 1,
  USAGE: 2,
  DAEMON_UNREACHABLE: 3,
  REFUSED: 4,
  INTERNAL: 5,
  /** `styxy doctor`: at least one check failed (1 means the worst was a warning). */
  CHECK_FAILED: 6,
} as const
