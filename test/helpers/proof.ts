import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {PROJECT_ROOT} from '../../src/project.js'
import {pollUntil} from '../../src/retry.js'

/** The bind exchange's contract, written by `make contract` (interceptor/contract.zig, test/contract/generate.ts). */
export const CONTRACT_FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'contract')

/**
 * The proof suites run bounded in `make test` and longer in `make soak` (STYXY_SOAK=1): the same code, scaled.
 * Each suite reports its figures on one line (and appends them to $STYXY_FIGURES as JSON lines when set), which
 * is where docs/reliability.md takes its numbers from.
 */
export const SOAK = process.env.STYXY_SOAK === '1'

export function scaled(bounded: number, soak: number): number {
  return SOAK ? soak : bounded
}

export function report(suite: string, figures: Record<string, unknown>): void {
  const line = JSON.stringify({suite, soak: SOAK, ...figures})
  console.log(`      figures ${line}`)
  if (process.env.STYXY_FIGURES) fs.appendFileSync(process.env.STYXY_FIGURES, line + '\n')
}

/** Resident memory of a process, in MB (from /proc, so it works for any pid). */
export function rssMb(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** p50/p90/p99/max of samples in ms, rounded to 0.01 ms. */
export function latencies(samples: number[]): {n: number; p50: number; p90: number; p99: number; max: number} {
  const s = [...samples].sort((a, b) => a - b)
  const r = (x: number) => Math.round(x * 100) / 100
  return {n: s.length, p50: r(percentile(s, 50)), p90: r(percentile(s, 90)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN)}
}

export async function timed<T>(samples: number[], fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  const out = await fn()
  samples.push(performance.now() - t0)
  return out
}

/** Poll `check` until it holds or `ms` passes (for "released within a few seconds"); resolves with the time taken. */
export function within(ms: number, check: () => boolean | Promise<boolean>, what: string): Promise<number> {
  const t0 = Date.now()
  return pollUntil(async () => ((await check()) ? Date.now() - t0 : undefined), {
    timeoutMs: ms, firstMs: 50, maxMs: 50, timeoutError: () => new Error(`not within ${ms} ms: ${what}`),
  })
}

export type Target = {path: string} | {host: string; port: number}

/**
 * Write raw bytes to the daemon and collect whatever comes back until it closes (or `timeoutMs`). Our side is
 * closed only after `quietMs` of silence: Node's server drops a request whose client half-closes early.
 */
export function rawExchange(target: Target, bytes: string | Buffer, timeoutMs = 5000, quietMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(target as net.NetConnectOpts)
    let out = ''
    const timer = setTimeout(() => { s.destroy(); resolve(out) }, timeoutMs)
    const quiet = setTimeout(() => s.end(), quietMs)
    s.on('data', (c) => (out += c))
    s.on('close', () => { clearTimeout(timer); clearTimeout(quiet); resolve(out) })
    s.on('error', (e: NodeJS.ErrnoException) => {
      // The daemon may answer and close before reading everything we send (413, 431): what it said counts.
      if (out || e.code === 'EPIPE' || e.code === 'ECONNRESET') return
      clearTimeout(timer)
      reject(e)
    })
    s.write(bytes)
  })
}

let framedHead: string | undefined

/**
 * The request exactly as interceptor/ipc.zig frames it on a Unix socket, with extra header lines if given. The
 * head is the interceptor's own, as `make contract` wrote it out (test/fixtures/contract/request.http): its
 * headers up to Content-Length, which comes last.
 */
export function interceptorRequest(body: string, extra = ''): string {
  if (framedHead === undefined) {
    const framed = fs.readFileSync(path.join(CONTRACT_FIXTURES, 'request.http'), 'latin1')
    const at = framed.lastIndexOf('\r\nContent-Length: ') + 2
    if (at < 2 || framed.indexOf('\r\n\r\n') !== framed.indexOf('\r\n', at)) {
      throw new Error('request.http does not end its head with Content-Length: run `make contract`')
    }
    framedHead = framed.slice(0, at)
  }
  return `${framedHead}${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

export function statusOf(answer: string): number {
  const m = answer.match(/^HTTP\/1\.[01] (\d{3})/)
  return m ? Number(m[1]) : 0
}

export function errorCodeOf(answer: string): string | undefined {
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4)
  try {
    // The legacy routes answer {"success":false,"error":"<message>","code"}; v1 {"error":{"code","message"}}.
    const parsed = JSON.parse(body) as {error?: {code?: string} | string; code?: string}
    return typeof parsed.error === 'string' ? parsed.code : parsed.error?.code
  } catch {
    return undefined
  }
}
