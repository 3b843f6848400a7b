import fs from 'node:fs'
import path from 'node:path'
import type Koa from 'koa'
import {PROJECT_ROOT} from '../../project.js'
import type {StyxyError} from '../../protocol/errors.js'

// The page is three plain files in the repository (src/dashboard/page), read when asked: no framework, no build
// step, and tsc (which copies nothing but what it compiles) is not in the way.
const PAGE_DIR = path.join(PROJECT_ROOT, 'src', 'dashboard', 'page')

/** The files served, by the name after /dashboard/: nothing else under that folder is reachable. */
const FILES: Record<string, {file: string; type: string}> = {
  '': {file: 'index.html', type: 'text/html; charset=utf-8'},
  'app.js': {file: 'app.js', type: 'text/javascript; charset=utf-8'},
  'style.css': {file: 'style.css', type: 'text/css; charset=utf-8'},
}

/**
 * Headers on every dashboard answer: never cached (the answers hold commands and pids), never framed (its
 * buttons release and stop: no clickjacking), and the page's own scripts and connections only.
 */
export function securityHeaders(ctx: Koa.Context, host: string): void {
  ctx.set('Cache-Control', 'no-store')
  ctx.set('X-Frame-Options', 'DENY')
  ctx.set('X-Content-Type-Options', 'nosniff')
  // Links to the servers (other ports) must not tell them where the user came from; the page's own calls carry it.
  ctx.set('Referrer-Policy', 'same-origin')
  ctx.set('Content-Security-Policy', [
    "default-src 'none'", "script-src 'self'", "style-src 'self'", `connect-src 'self' ws://${host}`, "img-src 'self' data:",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; '))
}

/** The file `name` names, or false when it is not one of the page's. */
export function servePageFile(ctx: Koa.Context, name: string): boolean {
  const entry = Object.hasOwn(FILES, name) ? FILES[name] : undefined
  if (!entry) return false
  ctx.type = entry.type
  ctx.body = fs.readFileSync(path.join(PAGE_DIR, entry.file))
  return true
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** A refusal a person sees (the login link, the page itself): a short page saying what to do, with the same code. */
export function htmlRefusal(ctx: Koa.Context, error: StyxyError): void {
  ctx.status = error.status
  ctx.type = 'text/html; charset=utf-8'
  ctx.body = `<!doctype html><meta charset="utf-8"><title>Styxy dashboard: ${escapeHtml(error.code)}</title>` +
    `<h1>Styxy dashboard</h1><p>${escapeHtml(error.message)}</p><p><code>${escapeHtml(error.code)}</code></p>`
}
