import {Routes} from '../../protocol/routes.js'
import type {Health, Status} from '../../protocol/types.js'
import {SCHEMA_VERSION} from '../../store/migrations.js'
import {DAEMON_HOST} from '../../paths.js'
import type {Mount} from './deps.js'

export const mountHealth: Mount = (router, {coordinator, hub, watches, metrics, paths, version, startedAt, tcp, proxy}) => {
  router.get(Routes.health.path, (ctx) => {
    const p = proxy()
    ctx.body = {ok: true, version, pid: process.pid, schemaVersion: SCHEMA_VERSION, proxyPort: p?.listening ? p.port : null} satisfies Health
  })
  router.get(Routes.status.path, (ctx) => {
    const store = coordinator.store
    const proxyState = proxy()
    ctx.body = {
      version, pid: process.pid, startedAt: new Date(startedAt).toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      leases: store.leaseCount(), leasesByService: store.leaseCountByService(), instances: store.instanceCount(),
      reassignments: store.reassignmentCount(), eventSubscribers: hub.subscribers,
      watchedRuns: watches.size,
      paths: {stateDir: paths.stateDir, socket: paths.socket, database: paths.database, token: paths.token, log: paths.log, audit: paths.audit},
      tcp: {host: DAEMON_HOST, ...tcp()},
      proxy: proxyState === null ? null : {host: DAEMON_HOST, ...proxyState},
      kernel: coordinator.kernelStatus(),
    } satisfies Status
  })
  router.get(Routes.serviceTypes.path, (ctx) => {
    ctx.body = coordinator.types
  })
  router.get(Routes.metrics.path, (ctx) => {
    ctx.type = 'text/plain; version=0.0.4'
    ctx.body = metrics.render({leasesByService: coordinator.store.leaseCountByService(), eventsSent: hub.sent, subscribers: hub.subscribers,
      subscribersDropped: hub.dropped, eventsHeld: hub.held, heapUsed: process.memoryUsage().heapUsed})
  })
}
