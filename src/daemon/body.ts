import type {IncomingMessage} from 'node:http'
import type Koa from 'koa'
import {StyxyError} from '../protocol/errors.js'

// Request bodies are small JSON objects. @koa/bodyparser (co-body, raw-body, type-is, a safe JSON parser) was a
// large share of a bind's time (docs/performance.md, History); this reads the bytes with a hard limit and
// JSON.parse does the rest.
// JSON.parse never assigns through __proto__ (it creates an own key), and every schema refuses unknown keys.

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** `application/json`, with or without parameters (charset): the only body the API takes. */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false
  const semi = contentType.indexOf(';')
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === 'application/json'
}

/**
 * A body over the limit is read on and thrown away before the 413 goes out, while it keeps arriving (up to
 * this many bytes): answering at once and closing while the client still sends makes the kernel reset the
 * connection, and the client often loses the answer with it (seen in the fuzz soak with bodies of 1-2 MB).
 * A sender that stops short is answered once it has been quiet for DRAIN_IDLE_MS: nobody is held for long.
 */
const DRAIN_MAX = 8 * 1024 * 1024
const DRAIN_IDLE_MS = 50

function drainThenRefuse(req: IncomingMessage, limit: number): Promise<never> {
  const refusal = new StyxyError('PAYLOAD_TOO_LARGE', `request body over ${limit} bytes`)
  return new Promise((_, reject) => {
    let seen = 0
    let idle = setTimeout(() => done(), DRAIN_IDLE_MS)
    const done = () => {
      clearTimeout(idle)
      req.off('data', onData)
      reject(refusal)
    }
    const onData = (chunk: Buffer) => {
      seen += chunk.length
      clearTimeout(idle)
      if (seen > DRAIN_MAX) done()
      else idle = setTimeout(() => done(), DRAIN_IDLE_MS)
    }
    req.on('data', onData)
    req.once('end', done)
    req.once('aborted', done)
    req.once('error', done)
  })
}

function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  // Refused without keeping a byte: a declared size over the limit never reaches memory.
  if (declared > limit) return declared <= DRAIN_MAX ? drainThenRefuse(req, limit) : Promise.reject(new StyxyError('PAYLOAD_TOO_LARGE', `request body over ${limit} bytes`))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        req.resume() // drain what is left so the answer can still be written
        reject(new StyxyError('PAYLOAD_TOO_LARGE', `request body over ${limit} bytes`))
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = () => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size))
    }
    const onAborted = () => {
      cleanup()
      reject(new StyxyError('BAD_REQUEST', 'request body ended early'))
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onAborted)
      req.off('aborted', onAborted)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onAborted)
    req.on('aborted', onAborted)
  })
}

/**
 * Parse a JSON body into `ctx.request.body`, refusing any other content type (415), anything over `limit`
 * bytes (413) and malformed JSON or a bare value instead of an object or array (400). No body: nothing set.
 * Compressed bodies are refused (415).
 */
export function jsonBody(limit: number): Koa.Middleware {
  return async (ctx, next) => {
    const req = ctx.req
    if (!hasBody(req)) return next()
    if (!isJson(req.headers['content-type'])) throw new StyxyError('UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json')
    const encoding = req.headers['content-encoding']
    if (encoding !== undefined && encoding !== 'identity') throw new StyxyError('UNSUPPORTED_MEDIA_TYPE', `content-encoding ${encoding} is not accepted`)
    const text = (await readLimited(req, limit)).toString('utf8')
    if (text.length === 0) return next() // an empty chunked body: as if none
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (error) {
      throw new StyxyError('INVALID_JSON', `invalid JSON: ${(error as Error).message}`)
    }
    if (typeof body !== 'object' || body === null) throw new StyxyError('INVALID_JSON', 'the body must be a JSON object or array')
    ;(ctx.request as {body?: unknown}).body = body
    return next()
  }
}
