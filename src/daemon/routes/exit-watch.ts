import type net from 'node:net'
import {Routes} from '../../protocol/routes.js'
import {ExitWatchRequestSchema} from '../../protocol/schemas.js'
import type {StyxyError} from '../../protocol/errors.js'
import {bodyOf, errorAnswer, validate} from '../middleware.js'
import type {LaneAnswer} from '../bind-lane.js'
import type {Mount, RouteDeps} from './deps.js'

// The answer comes when the connection ends, so in practice nobody reads it; it is still the release's
// outcome, for a client that half-closes and reads.

export const mountExitWatch: Mount = (router, {watches}) => {
  router.post(Routes.exitWatch.path, async (ctx) => {
    const req = validate(ExitWatchRequestSchema, bodyOf(ctx))
    ctx.body = await watches.hold(ctx.req.socket, req) ?? {released: [], expiredInstances: []}
  })
}

/** The same route in the Unix socket's lane; a body that does not validate is the app's to refuse. */
export function serveExitWatchLane({watches}: RouteDeps, log: (msg: string) => void, storage: (error: unknown) => StyxyError | null) {
  return (body: unknown, socket: net.Socket): Promise<LaneAnswer> | undefined => {
    const parsed = ExitWatchRequestSchema.safeParse(body)
    if (!parsed.success) return undefined
    return watches.hold(socket, parsed.data).then(
      (out): LaneAnswer => ({status: 200, body: out ?? {released: [], expiredInstances: []}}),
      (error: unknown): LaneAnswer => errorAnswer(error, `POST ${Routes.exitWatch.path}`, log, storage),
    )
  }
}
