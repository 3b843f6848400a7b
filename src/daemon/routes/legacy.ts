// The first Styxy's routes (LegacyRoutes in src/protocol/routes.ts), for its existing clients: the C bind()
// shim, agent hooks, scripts. Their shapes, this daemon's answers: the kernel asked now, real leases and
// instances. Errors on these paths leave as {"success":false,"error"} (middleware.ts).
import {LegacyRoutes} from '../../protocol/routes.js'
import {LegacyScanQuerySchema} from '../../protocol/legacy-schemas.js'
import {CountQuerySchema, PortParamSchema} from '../../protocol/schemas.js'
import {allocationRecord, legacyValidate, processName, systemUsage} from './legacy-shapes.js'
import {mountLegacyAllocations} from './legacy-allocations.js'
import {mountLegacyInstances} from './legacy-instances.js'
import type {Mount} from './deps.js'

const mountLegacyPorts: Mount = (router, {coordinator, version, startedAt}) => {
  const uptime = () => Math.round((Date.now() - startedAt) / 1000)
  router.get(LegacyRoutes.observe.path, async (ctx) => {
    const port = legacyValidate(PortParamSchema, ctx.params.port, 'Invalid port number')
    const info = coordinator.portInfo(port)
    const usage = systemUsage(info)
    if (!usage) {
      ctx.body = {port, bound: false, message: 'Port is not currently bound', leased: info.leased}
      return
    }
    const now = Date.now()
    const since = info.lease ? Date.parse(info.lease.createdAt) : null
    ctx.body = {
      port, bound: true,
      observation: {
        pid: usage.pid, process: processName(usage.command), command: usage.command,
        service_type: info.lease?.service ?? info.service, instance_id: info.lease?.instanceId ?? null,
        timestamp: new Date(now).toISOString(), duration_ms: since === null ? null : Math.max(0, Math.round(now - since)),
      },
    }
  })
  router.get(LegacyRoutes.suggest.path, async (ctx) => {
    const count = legacyValidate(CountQuerySchema, ctx.query.count, 'count must be a whole number from 1 to 1000')
    const r = coordinator.suggest(ctx.params.serviceType, count, true)
    ctx.body = r.ports.length
      ? {service_type: r.service, suggestions: r.ports, count: r.ports.length, message: `Found ${r.ports.length} available port(s)`, requested: r.requested}
      : {service_type: r.service, suggestions: [], count: 0, message: `No available ports found in ${r.service} range`, requested: r.requested}
  })
  router.get(LegacyRoutes.check.path, async (ctx) => {
    const port = legacyValidate(PortParamSchema, ctx.params.port, 'Invalid port number')
    const info = coordinator.portInfo(port)
    ctx.body = {
      port, available: !info.bound && !info.leased && !info.blocked,
      allocated_to: info.lease ? allocationRecord(info.lease) : null, system_usage: systemUsage(info),
    }
  })
  router.get(LegacyRoutes.scan.path, async (ctx) => {
    const q = legacyValidate(LegacyScanQuerySchema, ctx.query)
    ctx.body = {
      scan_range: `${q.start}-${q.end}`,
      ports_in_use: coordinator.scan(q.start, q.end).map((info) => ({
        port: info.port, allocated_to: info.lease ? allocationRecord(info.lease) : null, system_usage: systemUsage(info),
      })),
    }
  })
  router.get(LegacyRoutes.config.path, async (ctx) => {
    ctx.body = {
      service_types: Object.fromEntries(coordinator.types.map((t) => [t.name, {
        preferred_ports: t.preferredPorts, range: t.range, description: t.description, examples: [],
        instance_behavior: t.singleton ? 'single' : 'multi', source: t.source,
      }])),
    }
  })
  // No token needed (middleware.ts): counts only, nothing that names a path or a process.
  router.get(LegacyRoutes.status.path, async (ctx) => {
    ctx.body = {status: 'running', uptime: uptime(), allocations: coordinator.store.leaseCount(), instances: coordinator.store.instanceCount()}
  })
  router.get(LegacyRoutes.health.path, async (ctx) => {
    const checks: Record<string, string> = {}
    let status: 'healthy' | 'warning' | 'degraded' = 'healthy'
    try {
      coordinator.store.leaseCount()
      checks.storage = 'ok'
    } catch (error) {
      checks.storage = (error as Error).message
      status = 'degraded'
    }
    const kernel = coordinator.kernelStatus()
    checks.kernel = kernel.reason ? `fallback: ${kernel.reason}` : 'ok'
    if (kernel.reason && status === 'healthy') status = 'warning'
    ctx.status = status === 'degraded' ? 503 : 200
    ctx.body = {status, timestamp: new Date().toISOString(), uptime: uptime(), version, checks}
  })
}

export const mountLegacy: Mount = (router, deps) => {
  for (const mount of [mountLegacyPorts, mountLegacyAllocations, mountLegacyInstances]) mount(router, deps)
}
