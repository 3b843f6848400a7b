import type {FollowAnswer, FollowReport} from '../protocol/types.js'
import {StyxyError} from '../protocol/errors.js'
import type {EventHub} from './hub.js'
import {commandLine, ownerOf, processStartTime} from './proc.js'
import {namedProject} from './projects.js'

/** Enough for every process of a busy machine; the oldest is forgotten first (its repeat would be one more event). */
const MAX_SEEN = 4096

/**
 * Follows told by the interceptor: one `connect.followed` event per process and port, however often it is told
 * (a pid's start time tells a recycled pid from the process that first followed; the interceptor itself tells
 * each port once). Nothing is stored: the moves themselves are the leases, and the follow table is written
 * from them.
 */
export class Follows {
  private readonly seen = new Set<string>()

  constructor(private readonly hub: EventHub) {}

  report(req: FollowReport): FollowAnswer {
    // Told without waiting for an answer, often by a short-lived client (a curl) that has exited by now: a
    // report of a process that is gone is still a fact, only without its command line.
    const start = processStartTime(req.pid)
    const owner = start === null ? null : ownerOf(req.pid)
    if (owner !== null && owner !== process.geteuid?.()) throw new StyxyError('HOLDER_NOT_OURS', `pid ${req.pid} belongs to uid ${owner}, not to this daemon's user`)
    const key = `${req.pid}:${start ?? 'exited'}:${req.port}`
    if (this.seen.has(key)) return {published: false}
    if (this.seen.size >= MAX_SEEN) this.seen.delete(this.seen.values().next().value!)
    this.seen.add(key)
    this.hub.publish({type: 'connect.followed', data: {
      pid: req.pid, from: req.port, to: req.to, requestedPort: req.port, port: req.to,
      project: namedProject(req.project, req.pid), command: start === null ? null : commandLine(req.pid),
    }})
    return {published: true}
  }
}
