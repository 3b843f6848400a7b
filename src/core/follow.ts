// Which moves the clients of a project follow (docs/follow-table.md): a pure rule over the leases, used by the
// daemon to write the follow table and by `styxy list` to show what is followed.

/** A connect() from `project` to loopback port `asked` goes to `port`. */
export interface Move {
  project: string
  asked: number
  port: number
}

export interface MoveSource {
  project: string | null
  requestedPort: number | null
  port: number
}

/** The table's capacity: more moves than this at once are not followed (the newest are kept). */
export const MAX_MOVES = 1024

/** A lease that moved away from the port it asked for, with a project to follow it in. */
export function isMove(l: MoveSource): l is MoveSource & {project: string; requestedPort: number} {
  return l.project !== null && l.requestedPort !== null && l.port !== l.requestedPort
}

/**
 * The moves to publish, from the leases newest first, and the project of whoever holds a port now.
 * - Two servers of one project that asked for the same port: the newest is followed (the one just started).
 * - A project's own server on the asked port wins: its clients reach it there, no follow.
 */
export function followMoves(newestFirst: Iterable<MoveSource>, projectOn: (port: number) => string | null | undefined): Move[] {
  const out: Move[] = []
  const seen = new Set<string>()
  for (const l of newestFirst) {
    if (out.length >= MAX_MOVES) break
    if (!isMove(l)) continue
    const key = `${l.requestedPort}\0${l.project}`
    if (seen.has(key)) continue
    seen.add(key)
    if (projectOn(l.requestedPort) === l.project) continue
    out.push({project: l.project, asked: l.requestedPort, port: l.port})
  }
  return out
}
