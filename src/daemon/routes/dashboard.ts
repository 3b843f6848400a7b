import {DashboardRoutes, Routes} from '../../protocol/routes.js'
import {StyxyError} from '../../protocol/errors.js'
import type {DashboardLogin} from '../../protocol/types.js'
import {DAEMON_HOST} from '../../paths.js'
import type {Mount} from './deps.js'

/** `styxy dashboard`: a one-time login link, asked with the token (or over the socket), used by a browser. */
export const mountDashboard: Mount = (router, {tcp, dashboard}) => {
  router.post(Routes.dashboardLogin.path, (ctx) => {
    const state = tcp()
    if (!state.listening) {
      throw new StyxyError('DASHBOARD_UNAVAILABLE', `the dashboard is served on the daemon's TCP listener, and ${DAEMON_HOST}:${state.port} is off (${state.error ?? 'not listening'}): free that port, or choose another with STYXY_DAEMON_PORT, and restart the daemon`)
    }
    const {code, expiresAt} = dashboard.newCode()
    ctx.status = 201
    ctx.body = {
      url: `http://${DAEMON_HOST}:${state.port}${DashboardRoutes.login.path}?code=${code}`, expiresAt: new Date(expiresAt).toISOString(), port: state.port,
    } satisfies DashboardLogin
  })
}
