import {Readable} from 'node:stream'
import {Routes} from '../../protocol/routes.js'
import {toLease} from '../../store/store.js'
import {jsonArrayChunks} from '../json-chunks.js'
import {AllocationRequestSchema, CountQuerySchema, PortParamSchema, ScanQuerySchema} from '../../protocol/schemas.js'
import {bodyOf, validate} from '../middleware.js'
import type {Mount} from './deps.js'

export const mountAllocations: Mount = (router, {coordinator}) => {
  router.post(Routes.allocate.path, async (ctx) => {
    const body = validate(AllocationRequestSchema, bodyOf(ctx))
    ctx.status = 201
    ctx.body = await coordinator.allocate(body)
  })
  router.get(Routes.allocations.path, async (ctx) => {
    const service = typeof ctx.query.service === 'string' ? ctx.query.service : undefined
    const rows = coordinator.leaseRows(service)
    ctx.type = 'application/json'
    ctx.body = Readable.from(jsonArrayChunks(rows, toLease), {objectMode: false})
  })
  router.delete(Routes.release.path, async (ctx) => {
    ctx.body = coordinator.releases.release(ctx.params.id)
  })
  router.get(Routes.port.path, async (ctx) => {
    ctx.body = await coordinator.portInfo(validate(PortParamSchema, ctx.params.port, 'port'))
  })
  router.get(Routes.scan.path, async (ctx) => {
    const q = validate(ScanQuerySchema, ctx.query)
    ctx.body = await coordinator.scan(q.start, q.end)
  })
  router.get(Routes.suggest.path, async (ctx) => {
    ctx.body = await coordinator.suggest(ctx.params.service, validate(CountQuerySchema, ctx.query.count, 'count'))
  })
}
