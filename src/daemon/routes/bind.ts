import {Routes} from '../../protocol/routes.js'
import {BindRequestSchema, FollowReportSchema} from '../../protocol/schemas.js'
import {Follows} from '../follows.js'
import {bodyOf, validate} from '../middleware.js'
import type {Mount} from './deps.js'

export const mountBind: Mount = (router, {coordinator, hub}) => {
  router.post(Routes.bind.path, async (ctx) => {
    ctx.body = await coordinator.bind(validate(BindRequestSchema, bodyOf(ctx)))
  })
  const follows = new Follows(hub)
  router.post(Routes.follow.path, async (ctx) => {
    ctx.body = follows.report(validate(FollowReportSchema, bodyOf(ctx)))
  })
}
