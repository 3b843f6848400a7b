import {Routes} from '../../protocol/routes.js'
import {AllocationRequestSchema, CountQuerySchema, PortParamSchema} from '../../protocol/schemas.js'
import {bodyOf, validate} from '../middleware.js'
import type {Mount} from './deps.js'

export const mountAllocations: Mount = (router, {coordinator}) => {
  router.post(Routes.allocate.path, (ctx) => {
    const body = validate(AllocationRequestSchema, bodyOf(ctx))
    ctx.status = 201
    ctx.body = coordinator.allocate(body)
  })
  router.get(Routes.allocations.path, (ctx) => {
    const service = typeof ctx.query.service === 'string' ? ctx.query.service : undefined
    ctx.body = coordinator.leases(service)
  })
  router.delete(Routes.release.path, (ctx) => {
    ctx.body = coordinator.release(ctx.params.id)
  })
  router.get(Routes.port.path, (ctx) => {
    ctx.body = coordinator.portInfo(validate(PortParamSchema, ctx.params.port, 'port'))
  })
  router.get(Routes.suggest.path, (ctx) => {
    ctx.body = coordinator.suggest(ctx.params.service, validate(CountQuerySchema, ctx.query.count, 'count'))
  })
  // The first design's routes, kept so existing scripts keep working.
  router.get(Routes.legacyObserve.path, (ctx) => {
    ctx.body = coordinator.portInfo(validate(PortParamSchema, ctx.params.port, 'port'))
  })
  router.get(Routes.legacySuggest.path, (ctx) => {
    ctx.body = coordinator.suggest(ctx.params.serviceType, validate(CountQuerySchema, ctx.query.count, 'count'))
  })
}
