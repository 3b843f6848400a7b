import crypto from 'node:crypto'
import type Koa from 'koa'
import type {z} from 'zod'
import {StyxyError, type ErrorBody} from '../protocol/errors.js'
import {describeZodError} from '../protocol/schemas.js'
import type {Metrics} from './metrics.js'

export type Transport = 'unix' | 'tcp'

/** Which listener a request came in on: the servers tag each request before Koa sees it. */
export function transportOf(req: {styxyTransport?: Transport}): Transport {
  return req.styxyTransport ?? 'tcp'
}

function sendError(ctx: Koa.Context, status: number, code: string, message: string, details?: unknown): void {
  ctx.status = status
  ctx.body = {error: {code, message, ...(details === undefined ? {} : {details})}} satisfies ErrorBody
}

/** First middleware: every failure leaves as {"error":{code,message}}; nothing reaches the client as a stack trace. */
export function errors(log: (msg: string) => void, metrics?: Metrics, storage?: (error: unknown) => StyxyError | null): Koa.Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint()
    try {
      await next()
      if (ctx.status === 404 && ctx.body === undefined) sendError(ctx, 404, 'NOT_FOUND', `no route ${ctx.method} ${ctx.path}`)
      // The router answers 501 for a method it has never heard of: that is still the client's mistake.
      if (ctx.status === 405 || ctx.status === 501) sendError(ctx, 405, 'METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}`)
    } catch (error) {
      if (error instanceof StyxyError) {
        sendError(ctx, error.status, error.code, error.message, error.details)
      } else {
        const e = error as {status?: number; message?: string; expose?: boolean}
        const stored = storage?.(error)
        if (stored) {
          // The state directory is full, read-only or damaged: a clear answer (the interceptor fails open), no stack.
          log(stored.message)
          sendError(ctx, stored.status, stored.code, stored.message)
        } else if (e.status && e.status >= 400 && e.status < 500) {
          // Koa's own client errors (http-errors) carry a status.
          sendError(ctx, e.status, 'BAD_REQUEST', e.expose && e.message ? e.message : 'bad request')
        } else {
          log(`internal error on ${ctx.method} ${ctx.path}: ${(error as Error)?.stack ?? error}`)
          sendError(ctx, 500, 'INTERNAL', 'internal error (see the daemon log)')
        }
      }
    } finally {
      metrics?.observeRequest(Number(process.hrtime.bigint() - started) / 1e9)
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
  headers: Record<string, string | string[] | undefined>, transport: Transport, port: number, token: string,
): StyxyError | null {
  if (headers.origin !== undefined) return new StyxyError('FORBIDDEN_ORIGIN', 'requests from web pages (Origin header) are refused')
  if (headers.referer !== undefined) return new StyxyError('FORBIDDEN_ORIGIN', 'requests from web pages (Referer header) are refused')
  if (transport === 'unix') return null // the socket is 0600 in a 0700 directory: reaching it is the credential
  const host = String(headers.host ?? '').toLowerCase()
  if (!LOOPBACK_HOSTS.some((h) => host === `${h}:${port}`)) {
    return new StyxyError('FORBIDDEN_HOST', `Host "${host}" is not this daemon (expected 127.0.0.1:${port})`)
  }
  const auth = String(headers.authorization ?? '')
  const given = auth.startsWith('Bearer ') ? auth.slice(7).trim() : ''
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) {
    return new StyxyError('UNAUTHORIZED', 'TCP requests need "Authorization: Bearer <token>" (the token file in the state directory)')
  }
  return null
}

export function localOnly(getPort: () => number, token: string): Koa.Middleware {
  return async (ctx, next) => {
    const refusal = localOnlyRefusal(ctx.req.headers, transportOf(ctx.req as {styxyTransport?: Transport}), getPort(), token)
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
