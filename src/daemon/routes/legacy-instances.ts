import path from 'node:path'
import {projectRoot} from '../../shared/project.js'
import {LegacyRoutes} from '../../protocol/routes.js'
import {LegacyCleanupSchema, LegacyInstanceRegisterSchema, LegacyShimRegisterSchema} from '../../protocol/legacy-schemas.js'
import {StyxyError} from '../../protocol/errors.js'
import {toLease} from '../../store/store.js'
import {Instances} from '../instances.js'
import {bodyOf} from '../middleware.js'
import {instanceRecord, legacyValidate} from './legacy-shapes.js'
import type {Mount} from './deps.js'

/**
 * POST /register-instance (the shim's), POST /instance/register, PUT /instance/:id/heartbeat, GET /instance/list,
 * POST /cleanup: the daemon's instances (expiry by holder exit or by heartbeats stopping). Metadata is accepted
 * and not kept; the shim's port and service_type are accepted and ignored (its bind is what Styxy sees).
 */
export const mountLegacyInstances: Mount = (router, {coordinator, hub}) => {
  const instances = new Instances(coordinator.store, hub, coordinator.leaseRules)
  router.post(LegacyRoutes.registerShim.path, async (ctx) => {
    const b = legacyValidate(LegacyShimRegisterSchema, bodyOf(ctx))
    if (b.instance_id === undefined && b.pid === undefined) {
      throw new StyxyError('VALIDATION_FAILED', 'instance_id is required (or provide pid for auto-generation)')
    }
    const instance = instances.register({id: b.instance_id, pid: b.pid, project: b.project_path})
    ctx.body = {success: true, instance_id: instance.id, message: 'Instance registered successfully'}
  })
  router.post(LegacyRoutes.registerInstance.path, async (ctx) => {
    const b = legacyValidate(LegacyInstanceRegisterSchema, bodyOf(ctx))
    // A working directory, not a project: its worktree's top is the project its servers are recorded under.
    const dir = b.working_directory
    const instance = instances.register({id: b.instance_id, project: dir !== undefined && path.isAbsolute(dir) ? projectRoot(dir) : dir})
    ctx.body = {success: true, instance_id: instance.id, message: `Instance ${instance.id} registered`}
  })
  router.put(LegacyRoutes.heartbeat.path, async (ctx) => {
    let instance
    try {
      instance = instances.heartbeat(ctx.params.id)
    } catch (error) {
      if (error instanceof StyxyError && error.code === 'NOT_FOUND') throw new StyxyError('NOT_FOUND', 'Instance not found')
      throw error
    }
    ctx.body = {success: true, instance_id: instance.id, last_heartbeat: instance.lastHeartbeatAt}
  })
  router.get(LegacyRoutes.instances.path, async (ctx) => {
    ctx.body = {instances: instances.list().map((i) => instanceRecord(i, coordinator.store.leasesOfInstance(i.id).map(toLease)))}
  })
  router.post(LegacyRoutes.cleanup.path, async (ctx) => {
    const b = legacyValidate(LegacyCleanupSchema, bodyOf(ctx))
    const r = coordinator.releases.reap(b.force === true)
    const cleaned = r.released.length
    ctx.body = {
      success: true, cleaned, expired_instances: r.expiredInstances.length,
      message: `Cleaned up ${cleaned} stale allocation(s) and ${r.expiredInstances.length} expired instance(s)`,
    }
  })
}
