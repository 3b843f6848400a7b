import type net from 'node:net'
import {StyxyError} from '../../protocol/errors.js'
import type {Transport} from '../middleware.js'
import type {DashboardSessions} from './sessions.js'
import type {PeerCheck} from './peer.js'

// The one exception to "requests from web pages are refused" (middleware.ts localOnly): the dashboard's own page.
// A browser sends Origin (and Referer) on the page's own requests, so those are accepted, but only when they name
// this very listener, and only with a live session cookie. Host must be the listener itself: a *.localhost name
// (the names proxy) or any other name (DNS rebinding) never reaches the dashboard. The cookie opens nothing but
// /dashboard (its Path, and this check: /v1 goes through localOnly, which ignores cookies).

type Headers = Record<string, string | string[] | undefined>

/** Cookies are not kept apart by port: one name per daemon port keeps two daemons' sessions from clobbering each other. */
export function cookieName(port: number): string {
  return `styxy_dashboard_${port}`
}

/** The cookie header's value for `name`, or undefined. */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(header) ? header.join('; ') : header ?? ''
  for (const part of text.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** `Set-Cookie` for a new session: never readable by scripts, never sent by another site's request, only under /dashboard. */
export function sessionCookie(port: number, id: string): string {
  return `${cookieName(port)}=${id}; HttpOnly; SameSite=Strict; Path=/dashboard`
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin
  } catch {
    return null
  }
}

/**
 * Why a dashboard request (or WebSocket upgrade) is refused, or null. `needSession` is false only for the login
 * link itself, which is what makes a session. The peer is judged before the session, so that a login code
 * another user copied is refused without being used up.
 */
export function dashboardRefusal(req: {headers: Headers; socket: net.Socket}, transport: Transport, port: number, sessions: DashboardSessions, peer: PeerCheck, needSession = true): StyxyError | null {
  const headers = req.headers
  // A browser reaches TCP only; nothing on the socket needs a page.
  if (transport !== 'tcp') return new StyxyError('NOT_FOUND', 'the dashboard is served on the TCP listener only (styxy dashboard prints its address)')
  const host = String(headers.host ?? '').toLowerCase()
  if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
    return new StyxyError('FORBIDDEN_HOST', `Host "${host}" is not the dashboard (open http://127.0.0.1:${port}/dashboard/ through styxy dashboard)`)
  }
  const own = `http://${host}`
  const origin = headers.origin
  if (origin !== undefined && String(origin).toLowerCase() !== own) {
    return new StyxyError('FORBIDDEN_ORIGIN', `requests from ${String(origin)} are refused: only the dashboard's own page (${own}) may call it`)
  }
  const referer = headers.referer
  if (referer !== undefined && originOf(String(referer)) !== own) {
    return new StyxyError('FORBIDDEN_ORIGIN', `requests from other pages (Referer) are refused: only the dashboard's own page (${own}) may call it`)
  }
  const verdict = peer(req.socket)
  if (!verdict.ours) return new StyxyError('FORBIDDEN_PEER', `the dashboard answers its own user's programs only, and this connection is not one: ${verdict.why}`)
  if (needSession && !sessions.check(cookieValue(headers.cookie, cookieName(port)))) {
    return new StyxyError('NO_SESSION', 'not logged in, or the session ended (it lasts 12 hours from its last use; a daemon restart ends it): run `styxy dashboard` for a login link')
  }
  return null
}
