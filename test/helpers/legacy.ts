import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type {TestDaemon} from './daemon.js'

export interface LegacyAnswer {
  status: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
}

/** The daemon's TCP token (the file in its state directory). */
export function tokenOf(d: TestDaemon): string {
  return fs.readFileSync(path.join(d.home, 'token'), 'utf8').trim()
}

/**
 * A request as the first Styxy's clients make it: TCP, JSON, and by default `X-API-Key: <token>`. `headers`
 * replace the defaults (pass {} for no token).
 */
export function legacyRequest(d: TestDaemon, method: string, target: string, body?: unknown, headers?: Record<string, string>): Promise<LegacyAnswer> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
  const h: Record<string, string> = headers ?? {'x-api-key': tokenOf(d)}
  if (payload !== undefined) h['content-type'] = 'application/json'
  return new Promise((resolve, reject) => {
    const req = http.request({host: '127.0.0.1', port: d.port, method, path: target, headers: h, agent: false}, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => {
        let parsed: unknown = text
        try {
          parsed = JSON.parse(text)
        } catch {
          // left as text
        }
        resolve({status: res.statusCode!, body: parsed})
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}
