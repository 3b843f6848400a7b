import type Koa from 'koa'
import {Router} from '@koa/router'
import {DashboardRoutes, isDashboardPath} from '../../protocol/routes.js'
import {StyxyError} from '../../protocol/errors.js'
import {DashboardStopSchema, LoginCodeSchema} from '../../protocol/schemas.js'
import {bodyOf, transportOf, validate, type Transport} from '../middleware.js'
import {jsonBody} from '../body.js'
import type {Coordinator} from '../coordinator.js'
import {dashboardRefusal, sessionCookie} from './access.js'
import type {DashboardSessions} from './sessions.js'
import type {PeerCheck} from './peer.js'
import {htmlRefusal, securityHeaders, servePageFile} from './page.js'
import {listServers, stopHolderOfLease} from './listing.js'

export interface DashboardDeps {
  coordinator: Coordinator
  sessions: DashboardSessions
  /** Whose the connection is (peer.ts): the dashboard answers this user's processes only. */
  peer: PeerCheck
  tcpPort: () => number
  log: (msg: string) => void
}

function routes({coordinator, sessions, tcpPort, log}: DashboardDeps): Router {
  // Strict: /dashboard and /dashboard/ are two routes (the first sends to the second).
  const router = new Router({strict: true})
  router.get(DashboardRoutes.login.path, (ctx) => {
    const code = LoginCodeSchema.safeParse(ctx.query.code)
    const id = code.success ? sessions.redeem(code.data) : null
    if (id === null) {
      throw new StyxyError('LOGIN_CODE_INVALID', 'this login link was already used, has expired (a link works once, for 60 s) or was never issued: run `styxy dashboard` for a new one')
    }
    // Who can read the daemon's log can already reach it: the line says that a browser got in, not how.
    log(`dashboard: a browser logged in from ${ctx.req.socket.remoteAddress ?? '?'} (the session lasts 12 hours from its last use, or until the daemon stops)`)
    ctx.set('Set-Cookie', sessionCookie(tcpPort(), id))
    ctx.redirect(DashboardRoutes.page.path)
    ctx.status = 303
  })
  router.get('/dashboard', (ctx) => {
    ctx.redirect(DashboardRoutes.page.path)
  })
  router.get(DashboardRoutes.servers.path, (ctx) => {
    ctx.body = listServers(coordinator)
  })
  router.delete(DashboardRoutes.release.path, (ctx) => {
    ctx.body = coordinator.releases.release(ctx.params.id)
  })
  router.post(DashboardRoutes.stop.path, async (ctx) => {
    ctx.body = await stopHolderOfLease(coordinator, validate(DashboardStopSchema, bodyOf(ctx)).pid)
  })
  // The page and its two files; anything else under /dashboard/ is left unmatched (404).
  router.get(['/dashboard/', '/dashboard/:file'], (ctx, next) => (servePageFile(ctx, ctx.params.file ?? '') ? undefined : next()))
  return router
}

/** Whether a person, not the page's script, will read this answer: the login link and the page itself. */
function forPeople(ctx: Koa.Context): boolean {
  return !ctx.path.startsWith('/dashboard/api/') && ctx.accepts(['json', 'html']) === 'html'
}

/**
 * The dashboard, in front of localOnly: requests under /dashboard are judged by the dashboard's rule alone
 * (access.ts) and never go on to the API's routes; every other request goes on untouched.
 */
export function dashboardMiddleware(deps: DashboardDeps): Koa.Middleware {
  const router = routes(deps)
  // Run inside this middleware rather than mounted on the app: nothing under /dashboard may fall through to /v1.
  const matched = router.routes() as unknown as Koa.Middleware
  const allowed = router.allowedMethods() as unknown as Koa.Middleware
  const body = jsonBody(4096)
  const none = async () => {}
  return async (ctx, next) => {
    if (!isDashboardPath(ctx.path)) return next()
    securityHeaders(ctx, String(ctx.req.headers.host ?? '').toLowerCase())
    try {
      const needSession = ctx.path !== DashboardRoutes.login.path
      const refusal = dashboardRefusal(ctx.req, transportOf(ctx.req as {styxyTransport?: Transport}), deps.tcpPort(), deps.sessions, deps.peer, needSession)
      if (refusal) throw refusal
      await body(ctx, () => matched(ctx, () => allowed(ctx, none)))
    } catch (error) {
      if (error instanceof StyxyError && forPeople(ctx)) return htmlRefusal(ctx, error)
      throw error
    }
  }
}
