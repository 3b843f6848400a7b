import type {Router} from '@koa/router'
import type {StyxyPaths} from '../../paths.js'
import type {Coordinator} from '../coordinator.js'
import type {EventHub} from '../hub.js'
import type {ExitWatches} from '../exit-watches.js'
import type {Metrics} from '../metrics.js'
import type {TcpState} from '../tcp-listener.js'
import type {ConfigReloader} from '../config-reload.js'
import type {DashboardSessions} from '../dashboard/sessions.js'
import type {PeerCheck} from '../dashboard/peer.js'

export interface RouteDeps {
  coordinator: Coordinator
  hub: EventHub
  watches: ExitWatches
  metrics: Metrics
  paths: StyxyPaths
  config: ConfigReloader
  version: string
  startedAt: number
  tcpPort: () => number
  /** The TCP listener: on, or off and why (its port taken). */
  tcp: () => TcpState
  /** The dashboard's login codes and sessions (in memory: a restart logs browsers out). */
  dashboard: DashboardSessions
  /** Whose a dashboard connection is (dashboard/peer.ts). */
  dashboardPeer: PeerCheck
  /** The names proxy's listener: null when it is off (STYXY_PROXY_PORT=off). */
  proxy: () => TcpState | null
}

export type Mount = (router: Router, deps: RouteDeps) => void
