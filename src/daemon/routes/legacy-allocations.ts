import crypto from 'node:crypto'
import {LegacyRoutes} from '../../protocol/routes.js'
import {LegacyAllocateSchema, LockIdSchema} from '../../protocol/legacy-schemas.js'
import {StyxyError} from '../../protocol/errors.js'
import {toLease} from '../../store/store.js'
import {bodyOf} from '../middleware.js'
import {allocationRecord, legacyValidate} from './legacy-shapes.js'
import type {Mount} from './deps.js'

/** POST /allocate, DELETE /allocate/:lockId, GET /allocations: a legacy allocation is a lease whose id is its lock id. */
export const mountLegacyAllocations: Mount = (router, {coordinator}) => {
  router.post(LegacyRoutes.allocate.path, async (ctx) => {
    const b = legacyValidate(LegacyAllocateSchema, bodyOf(ctx))
    const type = coordinator.serviceType(b.service_type)
    let lease
    try {
      lease = coordinator.allocate(
        {service: b.service_type, port: b.preferred_port, name: b.service_name, instanceId: b.instance_id, project: b.project_path},
        {id: crypto.randomUUID(), dryRun: b.dry_run === true, sameNameAgain: true},
      )
    } catch (error) {
      if (error instanceof StyxyError && error.code === 'RANGE_EXHAUSTED') {
        throw new StyxyError('RANGE_EXHAUSTED', `No available ports in range ${type.range[0]}-${type.range[1]} for service type ${type.name}`)
      }
      throw error
    }
    if (lease.joined) {
      ctx.body = {
        port: lease.port, lockId: lease.id, message: `Single-instance service ${type.name} already running on port ${lease.port}`,
        existing: true, existingInstanceId: lease.instanceId, existingPid: lease.pid, allocatedAt: lease.createdAt,
      }
      return
    }
    ctx.body = {
      success: true, port: lease.port, lock_id: lease.id, message: `Port ${lease.port} allocated for ${type.name} service`,
      ...(b.dry_run ? {dry_run: true} : {}),
    }
  })
  router.delete(LegacyRoutes.release.path, async (ctx) => {
    const id = legacyValidate(LockIdSchema, ctx.params.lockId, 'Invalid lock ID format (expected a uuid v4)')
    let lease
    try {
      lease = coordinator.releases.release(id)
    } catch (error) {
      // The first API answered 400 for an unknown lock id too.
      if (error instanceof StyxyError && error.code === 'NOT_FOUND') throw new StyxyError('BAD_REQUEST', `Lock ID ${id} not found`)
      throw error
    }
    ctx.body = {success: true, port: lease.port, message: `Port ${lease.port} released`}
  })
  router.get(LegacyRoutes.allocations.path, async (ctx) => {
    ctx.body = {allocations: coordinator.leaseRows().map((r) => allocationRecord(toLease(r)))}
  })
}
