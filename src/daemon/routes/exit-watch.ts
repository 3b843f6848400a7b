import {Routes} from '../../protocol/routes.js'
import {ExitWatchRequestSchema} from '../../protocol/schemas.js'
import {bodyOf, validate} from '../middleware.js'
import type {Mount} from './deps.js'

// The answer comes when the connection ends, so in practice nobody reads it; it is still the release's
// outcome, for a client that half-closes and reads.

export const mountExitWatch: Mount = (router, {watches}) => {
  router.post(Routes.exitWatch.path, async (ctx) => {
    const req = validate(ExitWatchRequestSchema, bodyOf(ctx))
    ctx.body = await watches.hold(ctx.req.socket, req) ?? {released: [], expiredInstances: []}
  })
}
