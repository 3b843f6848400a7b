import crypto from 'node:crypto'
import type Koa from 'koa'
import type {z} from 'zod'
import {StyxyError, type ErrorBody} from '../protocol/errors.js'
import {describeZodError} from '../protocol/schemas.js'
import {isLegacyPath, LegacyRoutes, Routes} from '../protocol/routes.js'
import type {Metrics} from './metrics.js'

export type Transport = 'unix' | 'tcp'

/** Which listener a request came in on: the servers tag each request before Koa sees it. */
export function transportOf(req: {styxyTransport?: Transport}): Transport {
  return req.styxyTransport ?? 'tcp'
}

function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return {error: {code, message, ...(details === undefined ? {} : {details})}}
}

/**
 * What a failure is answered with: a StyxyError as itself, a storage failure as its code, Koa's own client
 * errors as BAD_REQUEST, anything else INTERNAL (logged, never shown as a stack trace).
 */
function errorAnswer(error: unknown, where: string, log: (msg: string) => void, storage?: (error: unknown) => StyxyError | null): {status: number; body: ErrorBody} {
  const answer = (status: number, code: string, message: string, details?: unknown) => ({status, body: errorBody(code, message, details)})
  if (error instanceof StyxyError) return answer(error.status, error.code, error.message, error.details)
  const stored = storage?.(error)
  if (stored) {
    // The state directory is full, read-only or damaged: a clear answer (the interceptor fails open), no stack.
    log(stored.message)
    return answer(stored.status, stored.code, stored.message)
  }
  const e = error as {status?: number; message?: string; expose?: boolean}
  if (e?.status && e.status >= 400 && e.status < 500) return answer(e.status, 'BAD_REQUEST', e.expose && e.message ? e.message : 'bad request')
  log(`internal error on ${where}: ${(error as Error)?.stack ?? error}`)
  return answer(500, 'INTERNAL', 'internal error (see the daemon log)')
}

/**
 * The first API's error shape, for its routes: {"success":false,"error":"<message>"}. Its clients knew 400
 * (bad input), 401, 404 and 5xx: what v1 answers 409 or 422 (validation, unknown type, range exhausted) is 400.
 */
function legacyAnswer(status: number, body: ErrorBody): {status: number; body: {success: false; error: string; code: string}} {
  return {status: status === 409 || status === 422 ? 400 : status, body: {success: false, error: body.error.message, code: body.error.code}}
}

/**
 * First middleware: every failure leaves as {"error":{code,message}} (on the legacy routes, as
 * {"success":false,"error"}); nothing reaches the client as a stack trace.
 */
export function errors(log: (msg: string) => void, metrics?: Metrics, storage?: (error: unknown) => StyxyError | null): Koa.Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint()
    try {
      await next()
      if (ctx.status === 404 && ctx.body === undefined) throw new StyxyError('NOT_FOUND', `no route ${ctx.method} ${ctx.path}`)
      // The router answers 501 for a method it has never heard of: that is still the client's mistake.
      if (ctx.status === 405 || ctx.status === 501) throw new StyxyError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}`)
    } catch (error) {
      const {status, body} = errorAnswer(error, `${ctx.method} ${ctx.path}`, log, storage)
      const answer = isLegacyPath(ctx.path) ? legacyAnswer(status, body) : {status, body}
      ctx.status = answer.status
      ctx.body = answer.body
    } finally {
      // An exit watch lasts as long as its run: it is not a request's latency.
      if (ctx.path !== Routes.exitWatch.path) metrics?.observeRequest(Number(process.hrtime.bigint() - started) / 1e9)
    }
  }
}

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]']

/**
 * The daemon is for this user's processes only. A browser page can reach a loopback TCP port, so requests
 * carrying Origin or Referer are refused, and so is any Host but loopback with our port (DNS rebinding).
 * Returns the refusal, or null when the request may go on. Shared by HTTP requests and WebSocket upgrades.
 */
export function localOnlyRefusal(
  headers: Record<string, string | string[] | undefined>, transport: Transport, port: number, token: string, needToken = true,
): StyxyError | null {
  if (headers.origin !== undefined) return new StyxyError('FORBIDDEN_ORIGIN', 'requests from web pages (Origin header) are refused')
  if (headers.referer !== undefined) return new StyxyError('FORBIDDEN_ORIGIN', 'requests from web pages (Referer header) are refused')
  if (transport === 'unix') return null // the socket is 0600 in a 0700 directory: reaching it is the credential
  const host = String(headers.host ?? '').toLowerCase()
  if (!LOOPBACK_HOSTS.some((h) => host === `${h}:${port}`)) {
    return new StyxyError('FORBIDDEN_HOST', `Host "${host}" is not this daemon (expected 127.0.0.1:${port})`)
  }
  if (!needToken) return null
  // "Authorization: Bearer <token>", or "X-API-Key: <token>" as the first API's clients send it.
  const auth = String(headers.authorization ?? '')
  const apiKey = headers['x-api-key']
  const given = auth.startsWith('Bearer ') ? auth.slice(7).trim() : typeof apiKey === 'string' ? apiKey.trim() : ''
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) {
    return new StyxyError('UNAUTHORIZED', 'TCP requests need "Authorization: Bearer <token>" or "X-API-Key: <token>" (the token file in the state directory)')
  }
  return null
}

/** The first API's GET /status answered without a token (counts only): its hooks call it before they have one. */
function tokenNeeded(method: string, path: string): boolean {
  return !(method === 'GET' && (path === LegacyRoutes.status.path || path === `${LegacyRoutes.status.path}/`))
}

export function localOnly(getPort: () => number, token: string): Koa.Middleware {
  return async (ctx, next) => {
    const refusal = localOnlyRefusal(ctx.req.headers, transportOf(ctx.req as {styxyTransport?: Transport}), getPort(), token, tokenNeeded(ctx.method, ctx.path))
    if (refusal) throw refusal
    return next()
  }
}

/** Parse or refuse with VALIDATION_FAILED naming the field; `label` names a lone value (a path or query parameter). */
export function validate<T extends z.ZodType>(schema: T, value: unknown, label?: string): z.infer<T> {
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const message = describeZodError(parsed.error)
    throw new StyxyError('VALIDATION_FAILED', label ? message.replace('(root)', label) : message)
  }
  return parsed.data
}

/** The parsed JSON body (set by jsonBody). */
export function bodyOf(ctx: {request: unknown}): unknown {
  return (ctx.request as {body?: unknown}).body ?? {}
}
