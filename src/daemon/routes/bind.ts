import {Routes} from '../../protocol/routes.js'
import {BindRequestSchema} from '../../protocol/schemas.js'
import {bodyOf, validate} from '../middleware.js'
import type {Mount} from './deps.js'

export const mountBind: Mount = (router, {coordinator}) => {
  router.post(Routes.bind.path, async (ctx) => {
    ctx.body = await coordinator.bind(validate(BindRequestSchema, bodyOf(ctx)))
  })
}
