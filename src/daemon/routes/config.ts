import {Routes} from '../../protocol/routes.js'
import type {Mount} from './deps.js'

export const mountConfig: Mount = (router, {config}) => {
  router.post(Routes.reloadConfig.path, (ctx) => {
    ctx.body = config.reload('request')
  })
}
