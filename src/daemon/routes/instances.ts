import {Routes} from '../../protocol/routes.js'
import {InstanceRequestSchema, PidQuerySchema} from '../../protocol/schemas.js'
import {StyxyError} from '../../protocol/errors.js'
import {bodyOf, validate} from '../middleware.js'
import {Instances} from '../instances.js'
import type {Mount} from './deps.js'

export const mountInstances: Mount = (router, {coordinator, hub}) => {
  const instances = new Instances(coordinator.store, hub, coordinator.leaseRules)
  router.post(Routes.registerInstance.path, async (ctx) => {
    ctx.status = 201
    ctx.body = instances.register(validate(InstanceRequestSchema, bodyOf(ctx)))
  })
  router.post(Routes.heartbeat.path, async (ctx) => {
    ctx.body = instances.heartbeat(ctx.params.id)
  })
  router.get(Routes.instances.path, async (ctx) => {
    ctx.body = instances.list()
  })
  router.delete(Routes.removeInstance.path, async (ctx) => {
    ctx.body = instances.remove(ctx.params.id)
  })
  router.get(Routes.reassignments.path, async (ctx) => {
    const since = typeof ctx.query.since === 'string' ? Date.parse(ctx.query.since) : 0
    if (Number.isNaN(since)) throw new StyxyError('VALIDATION_FAILED', 'since must be an ISO 8601 time')
    ctx.body = coordinator.reassignments(since)
  })
  router.post(Routes.cleanup.path, async (ctx) => {
    if (ctx.query.pid !== undefined) {
      ctx.body = coordinator.releases.releaseExited(validate(PidQuerySchema, ctx.query.pid, 'pid'))
      return
    }
    ctx.body = await coordinator.releases.reap(ctx.query.force === 'true' || ctx.query.force === '1')
  })
}
